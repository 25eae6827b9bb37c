// Turns a parsed log line into an Event for the store: source log, the
// record's stage and fields as attributes, the client endpoints, and a
// stream per smtpd/postscreen process ("log:<host>:<pid>"): an smtpd process
// serves one session at a time; postscreen serves many at once, told apart
// by the client port it always logs. Client text is cut at max_value_bytes.
#pragma once

#include <cstddef>

#include "event.h"
#include "postfix_message.h"
#include "syslog_line.h"

namespace smtpscope::ingest {

Event to_event(const SyslogLine& line, const LogRecord& record, std::size_t max_value_bytes);

}  // namespace smtpscope::ingest
