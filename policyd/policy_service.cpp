#include "policy_service.h"

#include <spdlog/spdlog.h>

#include "policy_event.h"
#include "text_escape.h"

namespace smtpscope::policy {

PolicyService::PolicyService(const Clock& clock, EventSink& sink, std::size_t max_value_bytes,
                             std::shared_ptr<const RuleSet> rules, HistorySource* history)
    : clock_(clock), sink_(sink), max_value_bytes_(max_value_bytes), rules_(std::move(rules)),
      history_(history) {}

std::string PolicyService::answer(Request&& request, const std::string& stream) {
  // Decide first: building the event takes the request's strings.
  const Decision decision = decide(*rules_, request, history_);
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("policy state={} stream={} client={} action={}",
                  log_quoted(request.get("protocol_state"), 32), stream,
                  log_quoted(request.get("client_address"), 64), log_quoted(decision.action, 200));
  }
  Event event = to_event(std::move(request), stream, clock_.now_us(), max_value_bytes_);
  if (!decision.rule.empty()) event.add("rule", decision.rule);
  if (!sink_.submit(std::move(event))) dropped_ += 1;
  return decision.action;
}

}  // namespace smtpscope::policy
