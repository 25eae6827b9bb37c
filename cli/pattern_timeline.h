// Patterns over time: how many sessions each pattern named, per minute (a
// span up to two hours, as in a lab), per hour (up to three days) or per
// day (longer; wider buckets when the span
// would need more than max_buckets, so a year-9999 stamp among 1970 ones
// still makes a small chart), and that table drawn as a stacked bar chart
// in inline SVG with axis labels and a legend. A session counts once, under
// the pattern that names it (its first); sessions no pattern names are not
// drawn, but the axis spans every session. Patterns beyond max_series are summed as "other". Pure functions;
// the SVG escapes every name it shows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>


namespace smtpscope::cli {

struct TimedCount {  // `count` sessions that began at about at_us, named by `pattern` ("" none)
  std::int64_t at_us = 0;
  std::string pattern;
  std::int64_t count = 0;
};

struct PatternTimeline {
  std::int64_t start_us = 0;   // the first bucket's start (a whole minute, hour or day, UTC)
  std::int64_t bucket_us = 0;  // a minute, an hour, or a whole number of days
  std::vector<std::string> series;       // pattern names, most sessions first; "other" last
  std::vector<std::vector<std::int64_t>> counts;  // [bucket][series]
  std::int64_t sessions_with_pattern = 0;
  std::int64_t sessions = 0;
  std::int64_t first_us = 0;  // the first and last session's time
  std::int64_t last_us = 0;
};

PatternTimeline pattern_timeline(const std::vector<TimedCount>& sessions,
                                 std::size_t max_series = 8, std::size_t max_buckets = 400);

// Empty when no session has a pattern.
std::string pattern_timeline_svg(const PatternTimeline& timeline);

}  // namespace smtpscope::cli
