// EventWriter, the sensors that do not own the connection: the policy
// server and the log. A policy connection serves one smtpd process, and an
// smtpd process (the log's stream) one SMTP session at a time, so a stream's
// current session changes when the client address or port changes, or, in
// the log, at a new "connect from". Log sessions carry their host (the
// syslog host field), and two hosts' sessions never join.
#include "event_writer.h"
#include "event_writer_internal.h"

namespace smtpscope {
namespace {

// Streams come and go with smtpd processes; forget them all rather than
// grow without bound.
constexpr std::size_t max_streams_remembered = 10000;

}  // namespace

Result<EventWriter::JoinedState*> EventWriter::joined_session(const Event& event) {
  Endpoints endpoints = endpoints_of(event);
  // The log names its mail server (a central syslog file holds several).
  if (const auto host = event.attribute("host"); event.source == Source::log && host && !host->empty()) {
    endpoints.host = std::string(*host);
  }
  if (memory_.joined.size() > max_streams_remembered) memory_.joined.clear();
  JoinedState& state = memory_.joined[event.stream];
  const bool new_log_session = event.source == Source::log && event.stage == Stage::connect;
  if (!new_log_session && state.session_id != 0 && state.client_addr == endpoints.client_addr &&
      state.client_port == endpoints.client_port) {
    return &state;
  }
  const std::string source(to_string(event.source));
  const bool observed_connect = event.stage == Stage::connect;
  auto id = endpoints.client_port
                ? joiner_->find_or_open(endpoints, source, event.stream, event.time_us,
                                        observed_connect)
                : joiner_->find_or_open_by_address(endpoints, source, event.stream,
                                                   event.time_us, observed_connect);
  if (!id) return id.status();
  state = JoinedState{endpoints.client_addr, endpoints.client_port, id.value(), "", 0, 0, nullptr};
  return &state;
}

Result<std::int64_t> EventWriter::policy_transaction(const Event& event, JoinedState& state) {
  if (event.source != Source::policy || event.transaction == 0) return std::int64_t{0};
  if (event.transaction != state.transaction_seq) {
    const auto sender = event.attribute("sender");
    const std::optional<std::string> mail_from =
        sender ? std::optional<std::string>("<" + std::string(*sender) + ">") : std::nullopt;
    auto id = joiner_->transaction(state.session_id, event.transaction, mail_from, event.time_us);
    if (!id) return id.status();
    state.transaction_seq = event.transaction;
    state.transaction_id = id.value();
  }
  Result<std::int64_t> id = state.transaction_id;
  if (event.stage == Stage::data || event.stage == Stage::eom) {
    const auto queue_id = event.attribute("queue_id");
    const std::optional<std::int64_t> size =
        event.stage == Stage::eom ? to_number(event.attribute("size")) : std::nullopt;
    Status recorded =
        statements_->record_policy_message.bind(1, id.value())
            .bind(2, queue_id && !queue_id->empty() ? std::optional<std::string>(*queue_id)
                                                    : std::nullopt)
            .bind(3, size)
            .run();
    if (!recorded) return recorded;
  }
  return id;
}

// The greeting verb, from the policy server: at the HELO/EHLO check
// protocol_state names it, while protocol_name still says SMTP until Postfix
// has accepted an EHLO; after it, protocol_name tells. Before any greeting
// there is none.
Status EventWriter::record_protocol(const Event& event, JoinedState& state) {
  if (event.source != Source::policy) return Status::ok();
  std::optional<std::string_view> protocol;
  if (event.stage == Stage::helo) {
    protocol = event.attribute("protocol_state") == "EHLO" ? "ESMTP" : "SMTP";
  } else if (event.stage != Stage::connect) {
    protocol = event.attribute("protocol_name");
  }
  if (!protocol || protocol->empty() || *protocol == state.protocol) return Status::ok();
  Status recorded = statements_->record_protocol.bind(1, state.session_id).bind(2, *protocol).run();
  if (recorded) state.protocol = std::string(*protocol);
  return recorded;
}

Status EventWriter::apply_joined(const Event& event) {
  auto found = joined_session(event);
  if (!found) return found.status();
  JoinedState& state = *found.value();
  if (Status recorded = record_protocol(event, state); !recorded) return recorded;
  auto transaction_id = policy_transaction(event, state);
  if (!transaction_id) return transaction_id.status();
  if (Status inserted = insert_event(event, state.session_id, transaction_id.value(), state.base);
      !inserted) {
    return inserted;
  }
  if (event.source == Source::log && event.stage == Stage::close) {
    Status closed =
        statements_->close_from_log.bind(1, state.session_id).bind(2, event.time_us).run();
    memory_.joined.erase(event.stream);
    return closed;
  }
  return Status::ok();
}

}  // namespace smtpscope
