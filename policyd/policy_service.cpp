#include "policy_service.h"

#include <spdlog/spdlog.h>

#include "policy_event.h"
#include "text_escape.h"

namespace smtpscope::policy {

PolicyService::PolicyService(const Clock& clock, EventSink& sink, std::size_t max_value_bytes,
                             std::shared_ptr<const RuleSet> rules, HistorySource* history)
    : clock_(clock), sink_(sink), max_value_bytes_(max_value_bytes), rules_(std::move(rules)),
      history_(history) {}

std::string PolicyService::answer(const Request& request, const std::string& stream) {
  Event event = to_event(request, stream, clock_.now_us(), max_value_bytes_);
  const Decision decision = decide(*rules_, request, history_);
  if (!decision.rule.empty()) event.add("rule", decision.rule);
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("policy stage={} stream={} client={} arg=\"{}\" action=\"{}\"",
                  to_string(event.stage), stream, printable(request.get("client_address"), 64),
                  printable(event.argument, 200), printable(decision.action, 200));
  }
  if (!sink_.submit(std::move(event))) dropped_ += 1;
  return decision.action;
}

}  // namespace smtpscope::policy
