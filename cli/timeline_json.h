// Renders sessions as JSON for jq and scripts (schema in docs/json.md):
// {"sessions": [{id, client, server, connect_us, close_us, helo, partial,
// transactions: [...], events: [...]}]}. Invalid UTF-8 becomes U+FFFD.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "session_reader.h"

namespace smtpscope::cli {

// Writes the same document one session at a time, so a long list is never
// held whole; finish() closes it.
class TimelineJsonWriter {
 public:
  explicit TimelineJsonWriter(std::ostream& out);
  void add(const SessionRecord& session);
  void finish();

 private:
  std::ostream& out_;
  bool any_ = false;
};

std::string render_timelines_json(const std::vector<SessionRecord>& sessions);

}  // namespace smtpscope::cli
