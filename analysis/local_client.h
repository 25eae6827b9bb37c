// Local reinjection: a session a content filter (amavis, a milter-less
// after-queue filter on a 10025-style service) hands back to Postfix from
// the loopback address. Such a client is the mail server itself, so the
// client ranking leaves it out by default. A session counts as one when
// its client is 127.0.0.1 or ::1 (IPv4-mapped too) AND the log shows
// reinjection: an XFORWARD in the disconnect counters (xforward=1), or a
// syslog tag naming a service by port (postfix/10025/smtpd,
// postfix-in/127.0.0.1:10025/smtpd). Other loopback clients (a test
// harness, a local script) stay ranked. Pure.
#pragma once

#include <string_view>

#include "session_reader.h"

namespace smtpscope::analysis {

bool is_loopback_address(std::string_view addr);
// A syslog tag with a component before the program that is a port
// ("10025") or ends in one ("127.0.0.1:10025").
bool tag_names_a_port(std::string_view program);
bool is_local_reinjection(const SessionRecord& session);

}  // namespace smtpscope::analysis
