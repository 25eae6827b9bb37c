#include "policy_event.h"

#include <charconv>

#include "text_escape.h"

namespace smtpscope::policy {
namespace {

std::optional<std::uint64_t> hex(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The text a timeline shows for this request.
std::string_view argument_of(const Request& request, Stage stage) {
  switch (stage) {
    case Stage::helo: return request.get("helo_name");
    case Stage::mail: return request.get("sender");
    case Stage::rcpt:
    case Stage::vrfy: return request.get("recipient");
    case Stage::etrn: return request.get("etrn_domain");
    case Stage::connect: return request.get("client_name");
    case Stage::unknown: return request.get("protocol_state");
    default: return request.get("queue_id");
  }
}

}  // namespace

std::optional<Instance> parse_instance(std::string_view text) {
  std::string_view parts[4];
  for (int i = 0; i < 4; ++i) {
    const std::size_t dot = text.find('.');
    if ((i < 3) == (dot == std::string_view::npos)) return std::nullopt;
    parts[i] = text.substr(0, dot);
    text.remove_prefix(dot == std::string_view::npos ? text.size() : dot + 1);
  }
  const auto pid = hex(parts[0]);
  const auto seqno = hex(parts[3]);
  if (!pid || !hex(parts[1]) || !hex(parts[2]) || !seqno || *seqno >= UINT32_MAX) {
    return std::nullopt;
  }
  return Instance{static_cast<std::int64_t>(*pid), static_cast<std::uint32_t>(*seqno + 1)};
}

Stage stage_of(std::string_view state) {
  if (state == "CONNECT") return Stage::connect;
  if (state == "EHLO" || state == "HELO") return Stage::helo;
  if (state == "MAIL") return Stage::mail;
  if (state == "RCPT") return Stage::rcpt;
  if (state == "DATA") return Stage::data;
  if (state == "END-OF-MESSAGE") return Stage::eom;
  if (state == "VRFY") return Stage::vrfy;
  if (state == "ETRN") return Stage::etrn;
  return Stage::unknown;
}

Event to_event(Request&& request, const std::string& stream, std::int64_t time_us,
               std::size_t max_value_bytes) {
  Event event;
  event.source = Source::policy;
  event.stage = stage_of(request.get("protocol_state"));
  event.time_us = time_us;
  event.stream = stream;
  event.argument = std::string(bounded(argument_of(request, event.stage), max_value_bytes));
  const auto instance = parse_instance(request.get("instance"));
  // Postfix sends "name=" when it has no value; those are not stored, so an
  // absent attribute means Postfix had nothing for it.
  event.attributes.reserve(request.attributes.size() + 2);
  for (auto& [name, value] : request.attributes) {
    if (name == "request" || value.empty()) continue;
    name.resize(bounded(name, max_value_bytes).size());
    value.resize(bounded(value, max_value_bytes).size());
    event.attributes.push_back({std::move(name), std::move(value)});
  }
  if (instance) {
    event.transaction = instance->transaction;
    event.add("smtpd_pid", std::to_string(instance->smtpd_pid));
  }
  return event;
}

}  // namespace smtpscope::policy
