#include "syslog_line.h"

#include <charconv>
#include <ctime>

namespace smtpscope::ingest {
namespace {

constexpr std::string_view month_names = "JanFebMarAprMayJunJulAugSepOctNovDec";

int month_of(std::string_view name) {
  if (name.size() != 3) return 0;
  for (int m = 0; m < 12; ++m) {
    if (month_names.substr(static_cast<std::size_t>(m) * 3, 3) == name) return m + 1;
  }
  return 0;
}

bool digits(std::string_view text, int& value) {
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc() && end == text.data() + text.size();
}

// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
std::int64_t days_from_civil(int y, int m, int d) {
  y -= m <= 2;
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return static_cast<std::int64_t>(era) * 146097 + doe - 719468;
}

std::int64_t civil_seconds(int y, int mo, int d, int h, int mi, int s) {
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

bool valid_time(int mo, int d, int h, int mi, int s) {
  return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h >= 0 && h <= 23 && mi >= 0 && mi <= 59 &&
         s >= 0 && s <= 60;
}

// "Nov  3 02:39:39 " or "Nov 03 02:39:39 "; rest follows the space.
std::optional<std::int64_t> bsd_time(std::string_view& rest, YearTracker& years) {
  if (rest.size() < 16) return std::nullopt;
  const int month = month_of(rest.substr(0, 3));
  if (month == 0 || rest[3] != ' ') return std::nullopt;
  std::size_t p = 4;
  if (rest[p] == ' ') ++p;  // space-padded day
  const std::size_t day_end = rest.find(' ', p);
  if (day_end == std::string_view::npos || day_end + 9 > rest.size()) return std::nullopt;
  int day = 0, h = 0, mi = 0, s = 0;
  const std::string_view clock = rest.substr(day_end + 1, 8);
  if (!digits(rest.substr(p, day_end - p), day) || clock[2] != ':' || clock[5] != ':' ||
      !digits(clock.substr(0, 2), h) || !digits(clock.substr(3, 2), mi) ||
      !digits(clock.substr(6, 2), s) || !valid_time(month, day, h, mi, s)) {
    return std::nullopt;
  }
  if (day_end + 9 >= rest.size() || rest[day_end + 9] != ' ') return std::nullopt;
  rest.remove_prefix(day_end + 10);
  const std::int64_t local = civil_seconds(years.year_for(month), month, day, h, mi, s);
  return (local - local_utc_offset(local)) * 1'000'000;
}

// "2026-11-23T02:39:39.855641+00:00 " (fraction and zone optional: Z or +hh:mm).
std::optional<std::int64_t> rfc3339_time(std::string_view& rest, bool& whole_seconds) {
  if (rest.size() < 20 || rest[4] != '-' || rest[7] != '-' || rest[10] != 'T' ||
      rest[13] != ':' || rest[16] != ':') {
    return std::nullopt;
  }
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (!digits(rest.substr(0, 4), y) || !digits(rest.substr(5, 2), mo) ||
      !digits(rest.substr(8, 2), d) || !digits(rest.substr(11, 2), h) ||
      !digits(rest.substr(14, 2), mi) || !digits(rest.substr(17, 2), s) ||
      !valid_time(mo, d, h, mi, s)) {
    return std::nullopt;
  }
  std::size_t p = 19;
  std::int64_t micros = 0;
  whole_seconds = !(p < rest.size() && rest[p] == '.');
  if (!whole_seconds) {
    int scale = 100000;
    for (++p; p < rest.size() && rest[p] >= '0' && rest[p] <= '9'; ++p) {
      micros += (rest[p] - '0') * scale;
      scale /= 10;
    }
  }
  std::int64_t offset = 0;
  if (p < rest.size() && rest[p] == 'Z') {
    ++p;
  } else if (p + 6 <= rest.size() && (rest[p] == '+' || rest[p] == '-') && rest[p + 3] == ':') {
    int oh = 0, om = 0;
    if (!digits(rest.substr(p + 1, 2), oh) || !digits(rest.substr(p + 4, 2), om)) {
      return std::nullopt;
    }
    offset = (oh * 3600 + om * 60) * (rest[p] == '-' ? -1 : 1);
    p += 6;
  } else {
    offset = local_utc_offset(civil_seconds(y, mo, d, h, mi, s));
  }
  if (p >= rest.size() || rest[p] != ' ') return std::nullopt;
  rest.remove_prefix(p + 1);
  return (civil_seconds(y, mo, d, h, mi, s) - offset) * 1'000'000 + micros;
}

}  // namespace

YearTracker::YearTracker(std::int64_t reference_us) {
  const std::time_t seconds = static_cast<std::time_t>(reference_us / 1'000'000);
  std::tm local{};
  localtime_r(&seconds, &local);
  reference_year_ = local.tm_year + 1900;
  reference_month_ = local.tm_mon + 1;
}

YearTracker YearTracker::starting_in(int year) {
  YearTracker tracker;
  tracker.reference_year_ = year;  // with reference_month_ 12: every month is in it
  return tracker;
}

int YearTracker::year_for(int month) {
  if (year_ == 0) {
    // Lines are no newer than the reference: a month after it is last year's.
    year_ = month > reference_month_ ? reference_year_ - 1 : reference_year_;
  } else if (last_month_ == 12 && month == 1) {
    year_ += 1;
  }
  last_month_ = month;
  return year_;
}

bool plausible_time(std::int64_t time_us, std::int64_t now_us) {
  return time_us >= earliest_log_time_us && time_us - log_time_lead_us <= now_us;
}

std::int64_t local_utc_offset(std::int64_t utc_guess_seconds) {
  static thread_local std::int64_t cached_hour = -1;
  static thread_local std::int64_t cached_offset = 0;
  const std::int64_t hour = utc_guess_seconds / 3600;
  if (hour != cached_hour) {
    const std::time_t t = static_cast<std::time_t>(utc_guess_seconds);
    std::tm local{};
    localtime_r(&t, &local);
    cached_offset = local.tm_gmtoff;
    cached_hour = hour;
  }
  return cached_offset;
}

std::optional<SyslogLine> parse_syslog_line(std::string_view line, YearTracker& years) {
  std::string_view rest = line;
  const bool rfc3339 = !rest.empty() && rest[0] >= '0' && rest[0] <= '9';
  bool whole_seconds = true;
  const auto time = rfc3339 ? rfc3339_time(rest, whole_seconds) : bsd_time(rest, years);
  if (!time) return std::nullopt;
  SyslogLine out;
  out.time_us = *time;
  out.whole_seconds = whole_seconds;
  const std::size_t host_end = rest.find(' ');
  if (host_end == std::string_view::npos || host_end == 0) return std::nullopt;
  out.host = rest.substr(0, host_end);
  rest.remove_prefix(host_end + 1);
  const std::size_t colon = rest.find(": ");
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  const std::string_view tag = rest.substr(0, colon);
  const std::size_t bracket = tag.find('[');
  if (bracket == std::string_view::npos) {
    if (tag.find(' ') != std::string_view::npos) return std::nullopt;
    out.program = tag;  // "dovecot: ...": a tag without a pid
  } else {
    out.program = tag.substr(0, bracket);
    int pid = 0;
    if (out.program.empty() || tag.back() != ']' ||
        !digits(tag.substr(bracket + 1, tag.size() - bracket - 2), pid)) {
      return std::nullopt;
    }
    out.pid = pid;
  }
  const std::size_t slash = out.program.rfind('/');
  out.daemon = slash == std::string_view::npos ? out.program : out.program.substr(slash + 1);
  out.message = rest.substr(colon + 2);
  return out;
}

}  // namespace smtpscope::ingest
