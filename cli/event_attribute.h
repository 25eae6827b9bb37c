// One attribute of a recorded event, read from its attributes JSON: the
// value when it is a string, else empty (absent, not a string, or broken
// JSON). The value is client text: callers escape it.
#pragma once

#include <string>

#include "session_reader.h"

namespace smtpscope::cli {

std::string event_attribute(const EventRecord& event, const char* name);

}  // namespace smtpscope::cli
