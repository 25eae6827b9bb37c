// Least privilege for the daemons: started as root (to bind sockets in
// root-owned places), they hand the sockets they created to the configured
// user and group and then become that user for good; started as root with
// no user configured they refuse to run unless allow_root says otherwise.
// Not started as root: nothing changes.
#pragma once

#include <string>
#include <vector>

#include "result.h"

namespace smtpscope {

struct PrivilegeOptions {
  std::string user;
  std::string group;  // empty: the user's primary group
  bool allow_root = false;
};

// `owned_paths` (unix sockets) are given to the user and group first.
Status drop_privileges(const PrivilegeOptions& options, const std::vector<std::string>& owned_paths);

}  // namespace smtpscope
