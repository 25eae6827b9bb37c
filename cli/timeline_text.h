// Renders sessions as readable timelines for a terminal, in the spirit of an
// SMTP transcript: one line per recorded stage with its time relative to the
// connect and its source, then a line per mail transaction. Every client
// string passes through printable().
#pragma once

#include <string>
#include <vector>

#include "session_reader.h"

namespace smtpscope::cli {

// notes[i], when given, are printed under session i: where the sensors
// disagree or one is missing.
std::string render_timelines_text(const std::vector<SessionRecord>& sessions,
                                  const std::vector<std::vector<std::string>>& notes = {});

}  // namespace smtpscope::cli
