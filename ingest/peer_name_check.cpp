#include "peer_name_check.h"

#include "consume_prefix.h"
#include "text_escape.h"

namespace smtpscope::ingest {
namespace {

// "NAME does not resolve to address ADDR[: REASON]" (NAME is a validated
// hostname: no spaces; ADDR neither).
std::optional<NameCheck> does_not_resolve(std::string_view text) {
  NameCheck out;
  const std::size_t space = text.find(' ');
  if (space == 0 || space == std::string_view::npos) return std::nullopt;
  out.name = text.substr(0, space);
  text.remove_prefix(space);
  if (!consume(text, " does not resolve to address ")) return std::nullopt;
  const std::size_t colon = text.find(": ");
  out.addr = text.substr(0, colon);
  if (out.addr.empty() || out.addr.find(' ') != std::string_view::npos) return std::nullopt;
  if (colon == std::string_view::npos) {
    out.check = "mismatch";
  } else {
    out.check = "unresolved";
    out.reason = text.substr(colon + 2);
  }
  return out;
}

// "ADDR: address not listed for hostname NAME" or "ADDR: hostname NAME
// verification failed: REASON". ADDR may be IPv6 (colons, no ": ").
std::optional<NameCheck> address_first(std::string_view text) {
  NameCheck out;
  const std::size_t colon = text.find(": ");
  if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
  out.addr = text.substr(0, colon);
  if (out.addr.find(' ') != std::string_view::npos) return std::nullopt;
  text.remove_prefix(colon + 2);
  if (consume(text, "address not listed for hostname ")) {
    out.name = text;
    out.check = "mismatch";
  } else if (consume(text, "hostname ")) {
    const std::size_t space = text.find(' ');
    if (space == 0 || space == std::string_view::npos) return std::nullopt;
    out.name = text.substr(0, space);
    text.remove_prefix(space);
    if (!consume(text, " verification failed")) return std::nullopt;
    out.check = "unresolved";
    if (consume(text, ": ")) out.reason = text;
  } else {
    return std::nullopt;
  }
  if (out.name.empty() || out.name.find(' ') != std::string_view::npos) return std::nullopt;
  return out;
}

}  // namespace

std::optional<NameCheck> parse_name_check(std::string_view message) {
  if (!consume(message, "warning: ")) return std::nullopt;
  if (consume(message, "hostname ")) return does_not_resolve(message);
  return address_first(message);
}

void PeerNameCheck::remember(const SyslogLine& line, const NameCheck& check,
                             std::size_t max_value_bytes) {
  if (pending_.size() >= max_remembered) pending_.clear();
  auto bound = [max_value_bytes](std::string_view text) {
    return std::string(bounded(text, max_value_bytes));
  };
  pending_[{std::string(line.host), line.pid}] =
      Pending{bound(check.addr), bound(check.name), std::string(check.check), bound(check.reason),
              line.time_us};
}

void PeerNameCheck::attach(const SyslogLine& line, Event& event) {
  if (pending_.empty()) return;
  const auto found = pending_.find({std::string(line.host), line.pid});
  if (found == pending_.end()) return;
  const Pending check = std::move(found->second);
  pending_.erase(found);
  if (event.attribute("client_addr") != check.addr || line.time_us < check.time_us ||
      line.time_us - check.time_us > window_us) {
    return;
  }
  event.add("client_ptr", check.name);
  event.add("ptr_check", check.check);
  if (!check.reason.empty()) event.add("ptr_check_reason", check.reason);
}

}  // namespace smtpscope::ingest
