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

// "hh:mm:ss" and an optional ".fraction" (any number of digits, microseconds kept).
bool read_clock(std::string_view& rest, int& h, int& mi, int& s, std::int64_t& micros,
                bool& whole_seconds) {
  if (rest.size() < 8 || rest[2] != ':' || rest[5] != ':' || !digits(rest.substr(0, 2), h) ||
      !digits(rest.substr(3, 2), mi) || !digits(rest.substr(6, 2), s)) {
    return false;
  }
  std::size_t p = 8;
  micros = 0;
  whole_seconds = !(p < rest.size() && (rest[p] == '.' || rest[p] == ','));
  if (!whole_seconds) {
    int scale = 100000;
    const std::size_t first = ++p;
    for (; p < rest.size() && rest[p] >= '0' && rest[p] <= '9'; ++p) {
      micros += (rest[p] - '0') * scale;
      scale /= 10;
    }
    if (p == first) return false;
  }
  rest.remove_prefix(p);
  return true;
}

// "Z", "+hh:mm", "+hhmm", "+hh" (or none: local time, nullopt).
bool read_zone(std::string_view& rest, std::optional<std::int64_t>& offset) {
  offset.reset();
  if (rest.empty()) return true;
  if (rest[0] == 'Z') {
    offset = 0;
    rest.remove_prefix(1);
    return true;
  }
  if (rest[0] != '+' && rest[0] != '-') return true;
  int oh = 0, om = 0;
  std::size_t p = 3;
  if (rest.size() < 3 || !digits(rest.substr(1, 2), oh)) return false;
  if (rest.size() >= 6 && rest[3] == ':') {
    if (!digits(rest.substr(4, 2), om)) return false;
    p = 6;
  } else if (rest.size() >= 5 && rest[3] >= '0' && rest[3] <= '9') {
    if (!digits(rest.substr(3, 2), om)) return false;
    p = 5;
  }
  offset = (oh * 3600 + om * 60) * (rest[0] == '-' ? -1 : 1);
  rest.remove_prefix(p);
  return true;
}

// A day of the month, space- or zero-padded, then a space: "3 ", " 3 ", "03 ".
bool read_day(std::string_view& rest, int& day) {
  if (!rest.empty() && rest[0] == ' ') rest.remove_prefix(1);
  const std::size_t end = rest.find(' ');
  if (end == std::string_view::npos || end > 2 || !digits(rest.substr(0, end), day)) return false;
  rest.remove_prefix(end + 1);
  return true;
}

// The stamp's fields as read, before the year and zone are settled.
struct Stamp {
  int year = -1;  // -1: none in the stamp
  int month = 0, day = 0, h = 0, mi = 0, s = 0;
  std::int64_t micros = 0;
  bool whole_seconds = true;
  std::optional<std::int64_t> offset;  // seconds east of UTC; none: local time
};

// BSD: "Nov  3 02:39:39", "Nov 03 02:39:39.855641" (journalctl -o
// short-precise), "Jun 10 2013 06:27:30" (with a year).
bool bsd_stamp(std::string_view& rest, Stamp& stamp) {
  if (rest.size() < 15 || rest[3] != ' ') return false;
  stamp.month = month_of(rest.substr(0, 3));
  rest.remove_prefix(4);
  if (stamp.month == 0 || !read_day(rest, stamp.day)) return false;
  if (int year = 0; rest.size() > 5 && rest[4] == ' ' && digits(rest.substr(0, 4), year)) {
    stamp.year = year;
    rest.remove_prefix(5);
  }
  return read_clock(rest, stamp.h, stamp.mi, stamp.s, stamp.micros, stamp.whole_seconds);
}

// Year first: "2013 Jun 10 06:27:30.123" (syslog-ng, rsyslog templates).
bool year_first_stamp(std::string_view& rest, Stamp& stamp) {
  if (rest.size() < 20 || rest[4] != ' ' || !digits(rest.substr(0, 4), stamp.year)) return false;
  rest.remove_prefix(5);
  const int year = stamp.year;
  return bsd_stamp(rest, stamp) && stamp.year == year;  // not a second year after the day
}

// RFC 3339 / ISO 8601: "2026-11-23T02:39:39.855641+00:00", the T or a
// space between date and time, fraction and zone (Z, +hh:mm, +hhmm) optional
// (journalctl -o short-iso, short-iso-precise).
bool iso_stamp(std::string_view& rest, Stamp& stamp) {
  if (rest.size() < 19 || rest[4] != '-' || rest[7] != '-' ||
      (rest[10] != 'T' && rest[10] != ' ') || !digits(rest.substr(0, 4), stamp.year) ||
      !digits(rest.substr(5, 2), stamp.month) || !digits(rest.substr(8, 2), stamp.day)) {
    return false;
  }
  rest.remove_prefix(11);
  return read_clock(rest, stamp.h, stamp.mi, stamp.s, stamp.micros, stamp.whole_seconds) &&
         read_zone(rest, stamp.offset);
}

}  // namespace

std::optional<std::int64_t> parse_log_time(std::string_view& rest, YearTracker& years,
                                           bool& whole_seconds) {
  Stamp stamp;
  const bool read = rest.empty()                       ? false
                    : !(rest[0] >= '0' && rest[0] <= '9') ? bsd_stamp(rest, stamp)
                    : rest.size() > 4 && rest[4] == '-'   ? iso_stamp(rest, stamp)
                                                          : year_first_stamp(rest, stamp);
  if (!read || rest.empty() || rest[0] != ' ' ||
      !valid_time(stamp.month, stamp.day, stamp.h, stamp.mi, stamp.s)) {
    return std::nullopt;
  }
  rest.remove_prefix(1);
  whole_seconds = stamp.whole_seconds;
  const int year = stamp.year >= 0 ? stamp.year : years.year_for(stamp.month);
  const std::int64_t civil = civil_seconds(year, stamp.month, stamp.day, stamp.h, stamp.mi, stamp.s);
  const std::int64_t offset = stamp.offset ? *stamp.offset : local_utc_offset(civil);
  return (civil - offset) * 1'000'000 + stamp.micros;
}

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

std::optional<SyslogLine> parse_syslog_line(std::string_view line, YearTracker& years,
                                           SyslogFault* fault) {
  std::string_view rest = line;
  bool whole_seconds = true;
  const auto time = parse_log_time(rest, years, whole_seconds);
  if (fault) *fault = SyslogFault::time;
  if (!time) return std::nullopt;
  if (fault) *fault = SyslogFault::layout;
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
