#include "timeline_json.h"

#include <nlohmann/json.hpp>

namespace smtpscope::cli {
namespace {

using nlohmann::json;

json optional_number(const std::optional<std::int64_t>& value) {
  return value ? json(*value) : json(nullptr);
}

json to_json(const EventRecord& e, std::int64_t connect_us) {
  json attributes = json::parse(e.attributes_json, nullptr, false);
  if (attributes.is_discarded()) attributes = json::object();
  return {{"source", e.source},       {"stage", e.stage},
          {"time_us", e.time_us},     {"offset_us", e.time_us - connect_us},
          {"transaction", optional_number(e.transaction_seq)},
          {"argument", e.argument},   {"attributes", attributes}};
}

json to_json(const TransactionRecord& t) {
  return {{"seq", t.seq},
          {"mail_from", t.mail_from},
          {"rcpt_accepted", t.rcpt_accepted},
          {"rcpt_rejected", t.rcpt_rejected},
          {"reached_data", t.reached_data},
          {"queue_id", t.queue_id.empty() ? json(nullptr) : json(t.queue_id)},
          {"body_bytes", optional_number(t.body_bytes)},
          {"outcome", t.outcome}};
}

json to_json(const SessionRecord& s) {
  json transactions = json::array();
  for (const auto& t : s.transactions) transactions.push_back(to_json(t));
  json events = json::array();
  for (const auto& e : s.events) events.push_back(to_json(e, s.connect_us));
  return {{"id", s.id},
          {"client", {{"addr", s.client_addr}, {"port", optional_number(s.client_port)},
                      {"name", s.client_name}}},
          {"server", {{"addr", s.server_addr}, {"port", optional_number(s.server_port)}}},
          {"connect_us", s.connect_us},
          {"close_us", optional_number(s.close_us)},
          {"helo", s.helo.empty() ? json(nullptr) : json(s.helo)},
          {"partial", s.partial},
          {"transactions", transactions},
          {"events", events}};
}

}  // namespace

std::string render_timelines_json(const std::vector<SessionRecord>& sessions) {
  json list = json::array();
  for (const auto& s : sessions) list.push_back(to_json(s));
  return json{{"sessions", list}}.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace smtpscope::cli
