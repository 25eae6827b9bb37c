// Renders sessions as readable timelines for a terminal, in the spirit of an
// SMTP transcript: one line per recorded stage with its time relative to the
// connect and its source, then a line per mail transaction. Every client
// string passes through printable().
#pragma once

#include <string>
#include <vector>

#include "session_reader.h"

namespace smtpscope::cli {

std::string render_timelines_text(const std::vector<SessionRecord>& sessions);

}  // namespace smtpscope::cli
