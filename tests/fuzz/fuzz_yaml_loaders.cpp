// Fuzzes the three YAML loaders with one input: the daemon configuration,
// the pattern file and the policy rules. Each must either load or return an
// error that names the file (never throw, crash or hang). What loads is
// also run, so the regexes a user can write are exercised: every pattern
// against the input as a stage string (and that string repeated into a
// long session), every rule against a request whose tested attributes all
// hold the input.
#include <string>

#include "config.h"
#include "fuzz_input.h"
#include "patterns.h"
#include "rules.h"

using namespace smtpscope;

namespace {

// Longer than std::regex survived (it recursed per character and crashed
// from about 10,000 bytes).
constexpr std::size_t long_subject_bytes = 16 * 1024;

template <typename Loaded>
void check(const Result<Loaded>& loaded) {
  if (!loaded) fuzz::require(loaded.message().find("fuzz.yaml") != std::string::npos,
                             "an error names the file");
}

std::string repeated_to(const std::string& text, std::size_t bytes) {
  if (text.empty()) return text;
  std::string out;
  while (out.size() < bytes) out += text;
  return out;
}

void match_patterns(const analysis::PatternSet& set, const std::string& text) {
  analysis::SessionFacts facts;
  for (const std::string& stages : {text, repeated_to(text, long_subject_bytes)}) {
    facts.stages = stages;
    const auto found = analysis::match_all(set, facts);
    for (std::size_t i = 1; i < found.size(); ++i) {
      fuzz::require(found[i - 1] < found[i], "matches in file order, each once");
    }
  }
}

void decide_rules(const policy::RuleSet& set, const std::string& text) {
  for (const std::string& value : {text, repeated_to(text, long_subject_bytes)}) {
    policy::Request request;
    for (const auto& rule : set.rules) {
      for (const auto& condition : rule.when) {
        request.attributes.emplace_back(condition.attribute, value);
      }
    }
    const policy::Decision decision = policy::decide(set, request, nullptr);
    fuzz::require(!decision.rule.empty() || decision.action == "DUNNO",
                  "no rule matched means DUNNO");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(fuzz::as_text(data, size));
  check(parse_config(text, "fuzz.yaml"));
  const auto patterns = analysis::parse_patterns(text, "fuzz.yaml");
  check(patterns);
  if (patterns) match_patterns(patterns.value(), text);
  const auto rules = policy::parse_rules(text, "fuzz.yaml");
  check(rules);
  if (rules) decide_rules(rules.value(), text);
  return 0;
}
