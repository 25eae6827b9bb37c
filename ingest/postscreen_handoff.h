// Joins the smtpd half of a connection to its postscreen half when smtpd
// logs no client port (smtpd_client_port_logging = no, the default):
// postscreen's PASS NEW, PASS OLD or WHITELISTED for [ADDR]:PORT hands the
// connection to an smtpd, whose "connect from NAME[ADDR]" on the same host
// follows within a few seconds. The first such connect takes the pass's
// port, and so do the later lines of that smtpd process (its stream) for
// that address until its disconnect, so the event writer joins them all to
// the session postscreen's CONNECT opened (by address and port). A pass
// is used once; one nobody takes expires. Memory is bounded (both tables
// are forgotten past max_remembered entries). Kept in memory only: an
// ingest resumed between a pass and its smtpd connect does not join them.
// Not thread-safe; one per Ingester.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

#include "postfix_message.h"
#include "syslog_line.h"

namespace smtpscope::ingest {

class PostscreenHandoff {
 public:
  // The longest time from a pass to smtpd's connect that still joins.
  static constexpr std::int64_t window_us = 10'000'000;
  static constexpr std::size_t max_remembered = 10000;

  // Looks at one parsed record of `line` and, for an smtpd record without a
  // client port that belongs to a postscreen pass, fills in that port.
  void observe(const SyslogLine& line, LogRecord& record);

 private:
  struct Pass {
    std::uint16_t port;
    std::int64_t time_us;
  };
  struct Adopted {
    std::string addr;
    std::uint16_t port;
  };
  void remember_pass(const SyslogLine& line, const LogRecord& record);
  void fill_smtpd(const SyslogLine& line, LogRecord& record);

  // (host, client address) -> passes not yet taken, oldest first.
  std::multimap<std::pair<std::string, std::string>, Pass> passes_;
  // (host, smtpd pid) -> the address and port its current session took.
  std::map<std::pair<std::string, std::int64_t>, Adopted> streams_;
};

}  // namespace smtpscope::ingest
