// Recorded times shown without overflow. A stored time is any 64-bit count
// of microseconds since 1970 (a log line may carry year 9999); std::chrono
// and fmt's time formatting go through nanoseconds and wrap outside
// 1678..2262, so every view formats and measures stored times through
// these functions instead. Pure functions, safe from any thread.
#pragma once

#include <cstdint>
#include <string>

namespace smtpscope::cli {

// "2026-11-25 09:46:40 UTC" (whole seconds, rounded down) for years 1 to
// 9999; outside them the raw value: "253402300800000000 us since 1970
// (outside years 1-9999)".
std::string utc_text(std::int64_t time_us);

// "09:46:40" (UTC) for years 1 to 9999, else the same raw form as utc_text.
std::string clock_text(std::int64_t time_us);

// to_us - from_us in seconds, computed in double: no integer overflow for
// any two times (exact to the microsecond while both are within ~285 years
// of 1970).
double seconds_between(std::int64_t from_us, std::int64_t to_us);

// to_us - from_us in microseconds, saturated at the int64 limits.
std::int64_t microseconds_between(std::int64_t from_us, std::int64_t to_us);

// Where time_us falls on an axis that starts at origin_us and is span_us
// long, as a fraction clamped to [0, 1] (0 for a span that is not positive):
// a drawing never gets a coordinate outside its axis.
double axis_fraction(std::int64_t time_us, std::int64_t origin_us, double span_us);

}  // namespace smtpscope::cli
