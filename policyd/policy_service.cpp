#include "policy_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>

#include "policy_event.h"
#include "text_escape.h"

namespace smtpscope::policy {

std::string_view protocol_state_label(std::string_view state) {
  static constexpr std::string_view known[] = {"CONNECT", "EHLO", "HELO",           "MAIL", "RCPT",
                                               "DATA",    "BDAT", "END-OF-MESSAGE", "VRFY", "ETRN"};
  for (std::string_view k : known) {
    if (state == k) return k;
  }
  return "other";
}

std::string_view action_label(std::string_view action) {
  const std::string_view word = action.substr(0, action.find_first_of(" \t"));
  if (word.size() == 3 && (word[0] == '4' || word[0] == '5') &&
      std::all_of(word.begin(), word.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return word[0] == '4' ? "4xx" : "5xx";
  }
  static constexpr std::string_view known[] = {
      "OK",   "DUNNO",  "REJECT", "DEFER",    "DEFER_IF_REJECT", "DEFER_IF_PERMIT", "BCC",
      "DISCARD", "FILTER", "HOLD", "PREPEND", "REDIRECT", "WARN", "INFO", "REQUIRE_TLS"};
  for (std::string_view k : known) {
    if (word.size() == k.size() &&
        std::equal(word.begin(), word.end(), k.begin(),
                   [](char a, char b) { return std::toupper(static_cast<unsigned char>(a)) == b; })) {
      return k;
    }
  }
  return "other";
}

void PolicyService::count(std::string_view protocol_state, std::string_view action) {
  const auto key = std::make_pair(protocol_state_label(protocol_state), action_label(action));
  Counter*& counter = requests_[key];
  if (counter == nullptr) {
    counter = &metrics_->counter(
        "smtpscope_policy_requests_total",
        "Policy requests answered, by Postfix protocol state and the answer's action.",
        {{"protocol_state", std::string(key.first)}, {"action", std::string(key.second)}});
  }
  counter->inc();
}

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
  if (metrics_) count(request.get("protocol_state"), decision.action);
  Event event = to_event(std::move(request), stream, clock_.now_us(), max_value_bytes_);
  if (!decision.rule.empty()) event.add("rule", decision.rule);
  if (!sink_.submit(std::move(event))) dropped_ += 1;
  return decision.action;
}

}  // namespace smtpscope::policy
