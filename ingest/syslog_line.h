// The syslog prefix of a Postfix log line, in the forms real logs have:
//   BSD (RFC 3164):  "Nov  3 02:39:39 mx postfix/smtpd[1610]: message"
//                    (day space- or zero-padded; Postfix's maillog_file too),
//                    with a fraction ("Nov  3 02:39:39.855641", journalctl -o
//                    short-precise) or a year ("Nov  3 2026 02:39:39")
//   year first:      "2013 Jun 10 06:27:30.123 gds39d postfix/smtp[7]: message"
//   RFC 3339 / ISO 8601: "2026-11-23T02:39:39.855641+00:00 mx ...", T or a
//                    space, fraction optional, zone Z, +hh:mm, +hhmm or none
//                    (local time; journalctl -o short-iso gives +hhmm)
// Stamps without a zone are local time. BSD timestamps without a year: a YearTracker gives the
// year of the first line (a given year, or inferred from a reference such
// as the file's mtime) and moves on by one at each Dec -> Jan boundary, and
// only there. plausible_time() tells the times ingest accepts. Parsing is
// allocation-free; the views point into the line.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace smtpscope::ingest {

struct SyslogLine {
  std::int64_t time_us = 0;  // UTC
  bool whole_seconds = true;  // the stamp had no fraction (BSD syslog, maillog_file)
  std::string_view host;
  std::string_view program;  // "postfix/submission/smtpd", "postfix-in/smtpd"
  std::string_view daemon;   // its last component: "smtpd", "postscreen", "qmgr"
  std::int64_t pid = 0;
  std::string_view message;  // after "]: "
};

class YearTracker {
 public:
  // reference_us: a time no earlier than the log's first line (the file's
  // mtime): the first line is in its year, or the year before if its month
  // is later than the reference's.
  explicit YearTracker(std::int64_t reference_us);
  // The first line is in `year` (`smtpscope ingest --year`).
  static YearTracker starting_in(int year);
  // The year for a BSD timestamp of this month (1..12), in line order.
  // Months that go back without passing from December to January (a log
  // out of order, or joined from pieces) keep the year.
  int year_for(int month);

 private:
  YearTracker() = default;
  int reference_year_ = 0;
  int reference_month_ = 12;
  int year_ = 0;
  int last_month_ = 0;
};

// Log times ingest accepts: from 1990 (before Postfix) to three days after
// `now_us` (clock skew, a mis-set zone); others are refused as malformed.
inline constexpr std::int64_t earliest_log_time_us = 631'152'000'000'000;  // 1990-01-01Z
inline constexpr std::int64_t log_time_lead_us = 3LL * 86400 * 1'000'000;
bool plausible_time(std::int64_t time_us, std::int64_t now_us);

// Why a line is not a syslog line: its time cannot be read, or what follows
// the time is not "host tag[pid]: message".
enum class SyslogFault { time, layout };

std::optional<SyslogLine> parse_syslog_line(std::string_view line, YearTracker& years,
                                           SyslogFault* fault = nullptr);

// The timestamp at the start of `rest` in any of the forms above, and the
// space after it; advances `rest` past them. UTC microseconds.
std::optional<std::int64_t> parse_log_time(std::string_view& rest, YearTracker& years,
                                           bool& whole_seconds);

// The accepted timestamp forms, for help texts and errors.
inline constexpr const char* accepted_time_formats =
    "BSD syslog (\"Nov  3 02:39:39\", with a year or a fraction too), year first "
    "(\"2013 Jun 10 06:27:30.123\"), RFC 3339 / ISO 8601 (\"2026-11-23T02:39:39.855641+00:00\", "
    "T or a space, zone optional), journalctl -o short, short-precise, short-iso, "
    "short-iso-precise";

// Seconds east of UTC for a local civil time (cached per hour; thread-unsafe).
std::int64_t local_utc_offset(std::int64_t utc_guess_seconds);

}  // namespace smtpscope::ingest
