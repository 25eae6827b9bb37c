// Turns one policy request into an Event: the stage from protocol_state, the
// transaction ordinal from `instance` (Postfix's per-session transaction
// counter, "pid.sec.usec.seqno" in hex), every attribute kept (values cut at
// max_value_bytes), and the smtpd pid for joining with the log.
// Pure functions, no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "event.h"
#include "policy_request.h"

namespace smtpscope::policy {

struct Instance {
  std::int64_t smtpd_pid = 0;
  std::uint32_t transaction = 0;  // 1-based, as the milter counts
};

// Parses "%x.%lx.%lx.%x"; nullopt for empty or malformed text.
std::optional<Instance> parse_instance(std::string_view text);

Stage stage_of(std::string_view protocol_state);

Event to_event(const Request& request, const std::string& stream, std::int64_t time_us,
               std::size_t max_value_bytes);

}  // namespace smtpscope::policy
