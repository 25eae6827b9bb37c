// When an event happened, relative to its session's connect, as the
// timelines show it. Most events carry microseconds; a log line with a
// whole-second stamp (attribute clock=second) was written at some moment
// within that second, so it counts from the end of the second, "no later
// than": the order the store reads events in (core/session_reader) and the
// label "<+11.0s" agree. Pure functions.
#pragma once

#include <string>

#include "session_reader.h"

namespace smtpscope::cli {

struct EventOffset {
  double seconds = 0;   // from the connect; for a coarse event, from the end of its second
  bool coarse = false;  // the log's whole-second stamp: "no later than"
};

EventOffset event_offset(const SessionRecord& session, const EventRecord& event);

// "+0.005s" for a precise offset, "<+11.0s" for a coarse one.
std::string offset_label(const EventOffset& offset);

}  // namespace smtpscope::cli
