// Renders sessions as JSON for jq and scripts (schema in docs/json.md):
// {"sessions": [{id, client, server, connect_us, close_us, helo, partial,
// transactions: [...], events: [...]}]}. Invalid UTF-8 becomes U+FFFD.
#pragma once

#include <string>
#include <vector>

#include "session_reader.h"

namespace smtpscope::cli {

std::string render_timelines_json(const std::vector<SessionRecord>& sessions);

}  // namespace smtpscope::cli
