// What the policy server does with each request: record it as an Event
// (never blocking: a full store drops and counts) and answer with the rules'
// decision, DUNNO by default. Rules can be replaced at run time (SIGHUP);
// a request is always decided by one consistent RuleSet.
// Used from the server's single event-loop thread.
#pragma once

#include <memory>
#include <string>

#include "clock.h"
#include "event_sink.h"
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

 private:
  const Clock& clock_;
  EventSink& sink_;
  std::size_t max_value_bytes_;
  std::shared_ptr<const RuleSet> rules_;
  HistorySource* history_;
  std::uint64_t dropped_ = 0;
};

}  // namespace smtpscope::policy
