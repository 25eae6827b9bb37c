// The syslog prefix of a Postfix log line, in the forms real logs have:
//   BSD (RFC 3164):  "Nov  3 02:39:39 mx postfix/smtpd[1610]: message"
//                    (day space- or zero-padded; Postfix's maillog_file too)
//   RFC 3339:        "2026-11-23T02:39:39.855641+00:00 mx postfix/smtpd[1610]: message"
// BSD timestamps have no year and are local time: a YearTracker infers the
// year (from a reference such as the file's mtime) and follows a Dec -> Jan
// rollover. Parsing is allocation-free; the views point into the line.
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
  // reference_us: a time no earlier than the log's last line (file mtime).
  explicit YearTracker(std::int64_t reference_us);
  // The year for a BSD timestamp of this month (1..12), in line order.
  int year_for(int month);

 private:
  int reference_year_;
  int reference_month_;
  int year_ = 0;
  int last_month_ = 0;
};

std::optional<SyslogLine> parse_syslog_line(std::string_view line, YearTracker& years);

// Seconds east of UTC for a local civil time (cached per hour; thread-unsafe).
std::int64_t local_utc_offset(std::int64_t utc_guess_seconds);

}  // namespace smtpscope::ingest
