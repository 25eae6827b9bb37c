// Where the policy server listens: "unix:/path" (file mode applied, a stale
// socket file replaced), "inet:HOST:PORT" (Postfix's spelling, as in
// check_policy_service), or "stdio" for spawn(8), where fd 0 and fd 1 are the
// one connection. Opened sockets are non-blocking and close-on-exec.
#pragma once

#include <sys/types.h>

#include <string>

#include "result.h"

namespace smtpscope::policy {

struct ListenSpec {
  enum class Kind { unix_socket, tcp, stdio };
  Kind kind = Kind::unix_socket;
  std::string path;  // unix
  std::string host;  // tcp
  int port = 0;      // tcp
  std::string text;  // as configured, for messages
};

Result<ListenSpec> parse_listen_spec(const std::string& text);

// Returns the listening file descriptor.
Result<int> open_listener(const ListenSpec& spec, mode_t unix_mode);

}  // namespace smtpscope::policy
