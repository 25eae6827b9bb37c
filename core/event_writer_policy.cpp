// EventWriter, policy side: a policy connection serves one smtpd process,
// which handles one SMTP session at a time, so the connection's current
// session changes exactly when the client address or port changes.
#include "event_writer.h"
#include "event_writer_internal.h"

namespace smtpscope {
namespace {

constexpr const char* join_by_endpoint = "client address+port+time";
// Policy connections come and go with smtpd processes; forget them all
// rather than grow without bound.
constexpr std::size_t max_policy_connections_remembered = 10000;

}  // namespace

Result<EventWriter::PolicyState*> EventWriter::policy_session(const Event& event) {
  const Endpoints endpoints = endpoints_of(event);
  if (memory_.policy.size() > max_policy_connections_remembered) memory_.policy.clear();
  PolicyState& state = memory_.policy[event.stream];
  if (state.session_id != 0 && state.client_addr == endpoints.client_addr &&
      state.client_port == endpoints.client_port) {
    return &state;
  }
  auto id = joiner_->find_or_open(endpoints, "policy", event.stream, event.time_us,
                                  event.stage == Stage::connect);
  if (!id) return id.status();
  if (Status noted = joiner_->note_source(id.value(), "policy", join_by_endpoint); !noted) {
    return noted;
  }
  state = PolicyState{endpoints.client_addr, endpoints.client_port, id.value(), "", 0, 0};
  return &state;
}

Result<std::int64_t> EventWriter::policy_transaction(const Event& event, PolicyState& state) {
  if (event.transaction == 0) return std::int64_t{0};
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

Status EventWriter::apply_policy(const Event& event) {
  auto found = policy_session(event);
  if (!found) return found.status();
  PolicyState& state = *found.value();
  // The greeting verb: at the HELO/EHLO check protocol_state names it, while
  // protocol_name still says SMTP until Postfix has accepted an EHLO; after
  // it, protocol_name tells. Before any greeting there is none.
  std::optional<std::string_view> protocol;
  if (event.stage == Stage::helo) {
    protocol = event.attribute("protocol_state") == "EHLO" ? "ESMTP" : "SMTP";
  } else if (event.stage != Stage::connect) {
    protocol = event.attribute("protocol_name");
  }
  if (protocol && !protocol->empty() && *protocol != state.protocol) {
    Status recorded =
        statements_->record_protocol.bind(1, state.session_id).bind(2, *protocol).run();
    if (!recorded) return recorded;
    state.protocol = std::string(*protocol);
  }
  auto transaction_id = policy_transaction(event, state);
  if (!transaction_id) return transaction_id.status();
  return insert_event(event, state.session_id, transaction_id.value());
}

}  // namespace smtpscope
