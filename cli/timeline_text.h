// Renders sessions as readable timelines for a terminal, in the spirit of an
// SMTP transcript: one line per recorded stage with its time relative to the
// connect and its source, then a line per mail transaction (for a session
// no milter saw, how many the analysis counts, and from what: the policy
// server's requests, the log's counters or its queue ids). The log's
// failed TLS handshakes, failed AUTHs and content rejects (the refused
// header or body line and the reply) are lines of their own. Every client
// string passes through printable().
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "session_reader.h"

namespace smtpscope::cli {

// Writes timelines one session at a time, so a long list is never held
// whole: the text of render_timelines_text, colourized for a terminal when
// asked. finish() says "no sessions recorded" when none was added.
class TimelineTextWriter {
 public:
  TimelineTextWriter(std::ostream& out, bool colour);
  void add(const SessionRecord& session, const std::vector<std::string>& notes);
  void finish();

 private:
  std::ostream& out_;
  bool colour_;
  bool any_ = false;
};

// notes[i], when given, are printed under session i: where the sensors
// disagree or one is missing.
std::string render_timelines_text(const std::vector<SessionRecord>& sessions,
                                  const std::vector<std::vector<std::string>>& notes = {});

}  // namespace smtpscope::cli
