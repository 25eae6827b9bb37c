#include "timeline_json.h"

#include <nlohmann/json.hpp>

#include <sstream>

#include "time_view.h"

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
          {"time_us", e.time_us},     {"offset_us", microseconds_between(connect_us, e.time_us)},
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
          {"host", s.host.empty() ? json(nullptr) : json(s.host)},
          {"connect_us", s.connect_us},
          {"close_us", optional_number(s.close_us)},
          {"helo", s.helo.empty() ? json(nullptr) : json(s.helo)},
          {"partial", s.partial},
          {"transactions", transactions},
          {"events", events}};
}

}  // namespace

// The document is {"sessions": [...]} indented by two: each session is
// dumped on its own and indented to its place (a newline occurs in dumped
// JSON only between tokens, never inside a string).
TimelineJsonWriter::TimelineJsonWriter(std::ostream& out) : out_(out) {
  out_ << "{\n  \"sessions\": [";
}

void TimelineJsonWriter::add(const SessionRecord& session) {
  const std::string dumped = to_json(session).dump(2, ' ', false, json::error_handler_t::replace);
  std::string indented = any_ ? ",\n    " : "\n    ";
  for (char c : dumped) {
    indented += c;
    if (c == '\n') indented += "    ";
  }
  any_ = true;
  out_ << indented;
}

void TimelineJsonWriter::finish() { out_ << (any_ ? "\n  ]\n}\n" : "]\n}\n"); }

std::string render_timelines_json(const std::vector<SessionRecord>& sessions) {
  std::ostringstream out;
  TimelineJsonWriter writer(out);
  for (const auto& s : sessions) writer.add(s);
  writer.finish();
  return out.str();
}

}  // namespace smtpscope::cli
