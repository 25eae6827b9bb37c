#include "event_offset.h"

#include <fmt/format.h>

#include <limits>

#include "event_attribute.h"
#include "time_view.h"

namespace smtpscope::cli {

EventOffset event_offset(const SessionRecord& s, const EventRecord& event) {
  constexpr std::int64_t rest_of_second = 999'999;
  const bool coarse = event_attribute(event, "clock") == "second";
  const bool room = event.time_us <= std::numeric_limits<std::int64_t>::max() - rest_of_second;
  return {seconds_between(s.connect_us, coarse && room ? event.time_us + rest_of_second
                                                       : event.time_us),
          coarse};
}

std::string offset_label(const EventOffset& offset) {
  return offset.coarse ? fmt::format("<{:+.1f}s", offset.seconds)
                       : fmt::format("{:+.3f}s", offset.seconds);
}

}  // namespace smtpscope::cli
