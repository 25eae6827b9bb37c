#include "time_view.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace smtpscope::cli {
namespace {

constexpr std::int64_t us_per_second = 1'000'000;
// 0001-01-01 00:00:00 and 9999-12-31 23:59:59 UTC, in seconds since 1970.
constexpr std::int64_t first_second = -62'135'596'800;
constexpr std::int64_t last_second = 253'402'300'799;

// Whole seconds since 1970, rounded down (also before 1970).
std::int64_t floor_seconds(std::int64_t time_us) {
  const std::int64_t seconds = time_us / us_per_second;
  return time_us % us_per_second < 0 ? seconds - 1 : seconds;
}

bool shown_as_date(std::int64_t seconds) {
  return seconds >= first_second && seconds <= last_second;
}

std::string raw(std::int64_t time_us) {
  return fmt::format("{} us since 1970 (outside years 1-9999)", time_us);
}

// Calendar fields from the day count (std::chrono's civil calendar, in days:
// no nanosecond conversion anywhere).
struct Civil {
  int year;
  unsigned month, day;
  std::int64_t second_of_day;
};

Civil civil(std::int64_t seconds) {
  std::int64_t days = seconds / 86'400;
  std::int64_t second_of_day = seconds % 86'400;
  if (second_of_day < 0) {
    second_of_day += 86'400;
    days -= 1;
  }
  const std::chrono::year_month_day date{
      std::chrono::sys_days{std::chrono::days{static_cast<int>(days)}}};
  return {static_cast<int>(date.year()), static_cast<unsigned>(date.month()),
          static_cast<unsigned>(date.day()), second_of_day};
}

std::string clock_of(std::int64_t second_of_day) {
  return fmt::format("{:02}:{:02}:{:02}", second_of_day / 3600, second_of_day / 60 % 60,
                     second_of_day % 60);
}

}  // namespace

std::string utc_text(std::int64_t time_us) {
  const std::int64_t seconds = floor_seconds(time_us);
  if (!shown_as_date(seconds)) return raw(time_us);
  const Civil c = civil(seconds);
  return fmt::format("{:04}-{:02}-{:02} {} UTC", c.year, c.month, c.day, clock_of(c.second_of_day));
}

std::string clock_text(std::int64_t time_us) {
  const std::int64_t seconds = floor_seconds(time_us);
  if (!shown_as_date(seconds)) return raw(time_us);
  return clock_of(civil(seconds).second_of_day);
}

double seconds_between(std::int64_t from_us, std::int64_t to_us) {
  return (static_cast<double>(to_us) - static_cast<double>(from_us)) / 1e6;
}

std::int64_t microseconds_between(std::int64_t from_us, std::int64_t to_us) {
  std::int64_t difference = 0;
  if (!__builtin_sub_overflow(to_us, from_us, &difference)) return difference;
  return to_us > from_us ? std::numeric_limits<std::int64_t>::max()
                         : std::numeric_limits<std::int64_t>::min();
}

double axis_fraction(std::int64_t time_us, std::int64_t origin_us, double span_us) {
  if (!(span_us > 0)) return 0.0;
  const double fraction = (static_cast<double>(time_us) - static_cast<double>(origin_us)) / span_us;
  if (std::isnan(fraction)) return 0.0;
  return std::clamp(fraction, 0.0, 1.0);
}

}  // namespace smtpscope::cli
