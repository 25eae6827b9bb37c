// What the policy server does with each request: record it as an Event
// (never blocking: a full store drops and counts) and answer with the rules'
// decision, DUNNO by default. Rules can be replaced at run time (SIGHUP);
// a request is always decided by one consistent RuleSet.
// With export_metrics() it counts requests by protocol state and by the
// answer's action word (both bounded sets, never a client string).
// Used from the server's single event-loop thread.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "clock.h"
#include "event_sink.h"
#include "metrics_registry.h"
#include "rules.h"
#include "server.h"

namespace smtpscope::policy {

class PolicyService final : public RequestHandler {
 public:
  PolicyService(const Clock& clock, EventSink& sink, std::size_t max_value_bytes,
                std::shared_ptr<const RuleSet> rules, HistorySource* history);

  std::string answer(Request&& request, const std::string& stream) override;

  void replace_rules(std::shared_ptr<const RuleSet> rules) { rules_ = std::move(rules); }
  std::uint64_t dropped() const { return dropped_; }

  // Registers smtpscope_policy_requests_total{protocol_state,action}.
  void export_metrics(MetricsRegistry& registry) { metrics_ = &registry; }

 private:
  const Clock& clock_;
  EventSink& sink_;
  std::size_t max_value_bytes_;
  std::shared_ptr<const RuleSet> rules_;
  HistorySource* history_;
  std::uint64_t dropped_ = 0;
  void count(std::string_view protocol_state, std::string_view action);
  MetricsRegistry* metrics_ = nullptr;
  std::map<std::pair<std::string_view, std::string_view>, Counter*> requests_;
};

// The label values: a protocol state Postfix sends (CONNECT ... ETRN) or
// "other"; an access(5) action word (OK, DUNNO, REJECT, DEFER_IF_PERMIT ...,
// 4xx, 5xx for numeric codes) or "other".
std::string_view protocol_state_label(std::string_view state);
std::string_view action_label(std::string_view action);

}  // namespace smtpscope::policy
