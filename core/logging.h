// Logging setup shared by every smtpscope program: spdlog to stderr or
// syslog, one line per message with a fixed prefix so lines are greppable
// (`smtpscope-milter[pid] info: milter stage=helo ...`). Client strings must
// go through log_quoted() (text_escape.h) before they are logged.
#pragma once

#include <string>

#include "result.h"

namespace smtpscope {

// level: trace|debug|info|warn|error; target: stderr|syslog.
Status setup_logging(const std::string& program, const std::string& level,
                     const std::string& target);

}  // namespace smtpscope
