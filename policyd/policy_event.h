// Turns one policy request into an Event: the stage from protocol_state, the
// transaction ordinal from `instance` (Postfix's per-session transaction
// counter, "pid.sec.usec.seqno" in hex), every attribute with a value kept
// (known or not; values cut at max_value_bytes; empty ones, which Postfix
// sends when it has no value, left out), and the smtpd pid for the log join.
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

// Takes the request's strings (moved, not copied).
Event to_event(Request&& request, const std::string& stream, std::int64_t time_us,
               std::size_t max_value_bytes);

}  // namespace smtpscope::policy
