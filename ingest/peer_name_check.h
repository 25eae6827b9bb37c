// smtpd's check of a client's name (smtpd_peer.c): the name the address's
// PTR record gives must resolve back to the address, else Postfix calls
// the client "unknown". It warns about a failed check just before its
// "connect from unknown[ADDR]":
//   hostname NAME does not resolve to address ADDR[: REASON]
//   ADDR: address not listed for hostname NAME          (Postfix 2.x)
//   ADDR: hostname NAME verification failed: REASON     (Postfix 2.x)
// PeerNameCheck remembers the last such warning of each smtpd process and
// adds it to that process's next connect event of the same address, within
// window_us: client_ptr=NAME (what the PTR record said), ptr_check=mismatch
// (NAME resolves, but not to ADDR) or unresolved (NAME did not resolve;
// REASON in ptr_check_reason). Memory is bounded (all forgotten past
// max_remembered processes). Not thread-safe; one per Ingester.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "event.h"
#include "syslog_line.h"

namespace smtpscope::ingest {

struct NameCheck {
  std::string_view addr;
  std::string_view name;
  std::string_view check;   // "mismatch" or "unresolved"
  std::string_view reason;  // the resolver's, when logged
};

// One of the warnings above (the whole smtpd message, "warning: ..."), or nullopt.
std::optional<NameCheck> parse_name_check(std::string_view message);

class PeerNameCheck {
 public:
  static constexpr std::int64_t window_us = 10'000'000;
  static constexpr std::size_t max_remembered = 10000;

  // Remembers the check of `line`'s smtpd process.
  void remember(const SyslogLine& line, const NameCheck& check, std::size_t max_value_bytes);
  // For an smtpd connect event: adds the check its process logged for its address.
  void attach(const SyslogLine& line, Event& event);

 private:
  struct Pending {
    std::string addr, name, check, reason;
    std::int64_t time_us;
  };
  std::map<std::pair<std::string, std::int64_t>, Pending> pending_;  // (host, pid)
};

}  // namespace smtpscope::ingest
