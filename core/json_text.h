// Writes JSON text directly for the hot path of the store: an event's
// attributes become one JSON object in a single pass, without building a
// document (the profile showed nlohmann's std::map per event as the
// writer's largest cost). Strings are escaped per RFC 8259; bytes that are
// not valid UTF-8 become U+FFFD, as JSON cannot carry them. A name that
// repeats keeps its first value, as Event::attribute() reads it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "event.h"

namespace smtpscope {

void append_json_string(std::string& out, std::string_view text);
std::string attributes_to_json(const std::vector<Attribute>& attributes);

}  // namespace smtpscope
