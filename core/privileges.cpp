#include "privileges.h"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace smtpscope {

Status drop_privileges(const PrivilegeOptions& options, const std::vector<std::string>& owned_paths) {
  if (::geteuid() != 0) return Status::ok();
  if (options.user.empty()) {
    if (options.allow_root) return Status::ok();
    return Status::error(
        "refusing to run as root: set daemon.user (and daemon.group) to an unprivileged user, "
        "or daemon.allow_root: true");
  }
  const passwd* user = ::getpwnam(options.user.c_str());
  if (user == nullptr) return Status::error("daemon.user: no user \"" + options.user + "\"");
  if (user->pw_uid == 0) return Status::error("daemon.user: \"" + options.user + "\" is root");
  gid_t gid = user->pw_gid;
  if (!options.group.empty()) {
    const group* g = ::getgrnam(options.group.c_str());
    if (g == nullptr) return Status::error("daemon.group: no group \"" + options.group + "\"");
    gid = g->gr_gid;
  }
  const uid_t uid = user->pw_uid;
  for (const std::string& path : owned_paths) {
    if (::chown(path.c_str(), uid, gid) != 0) {
      return Status::error("chown " + path + ": " + std::strerror(errno));
    }
  }
  if (::setgroups(1, &gid) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) {
    return Status::error(std::string("cannot become ") + options.user + ": " + std::strerror(errno));
  }
  if (::setuid(0) == 0) return Status::error("could regain root after dropping privileges");
  return Status::ok();
}

}  // namespace smtpscope
