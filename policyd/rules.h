// Policy rules: what the policy server answers. Each rule has a name, a set
// of conditions that must all hold, and an access(5) action. Conditions test
// request attributes (equality, regular expression, list membership,
// emptiness) and what the database already knows about the client
// (client_history: counts, and its HELO quirks, fingerprints and patterns
// as the analysis found them). The first matching rule answers; with no rule, or none
// matching, the answer is DUNNO, so by default smtpscope only observes.
// Regular expressions are RE2 (bytes, Perl-like syntax without
// backreferences or lookaround), searched in the whole value: time linear in
// the value, bounded memory and stack (the request parser bounds the value).
// A RuleSet is immutable once loaded; loading never throws and reports the
// file, line and reason of the first problem.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "policy_request.h"
#include "result.h"

namespace re2 {
class RE2;
}

namespace smtpscope::policy {

struct AttributeCondition {
  enum class Kind { equals, matches, one_of, empty };
  std::string attribute;
  Kind kind = Kind::equals;
  std::vector<std::string> values;  // equals: one value; one_of: the list
  std::shared_ptr<const re2::RE2> pattern;
  bool want_empty = true;
};

// What the database knows about a client over a time window.
struct ClientHistory {
  std::int64_t sessions = 0;
  std::int64_t aborted_transactions = 0;
  std::int64_t rejected_recipients = 0;
  // From the analysis (session_analysis), for sessions analysed so far.
  std::set<std::string> helo_quirks;
  std::set<std::string> fingerprints;
  std::set<std::string> patterns;
};

struct HistoryCondition {
  std::int64_t within_us = 0;
  std::optional<std::int64_t> sessions_at_least;
  std::optional<std::int64_t> aborted_transactions_at_least;
  std::optional<std::int64_t> rejected_recipients_at_least;
  std::optional<std::string> helo_quirk;   // some analysed session had it
  std::optional<std::string> fingerprint;
  std::optional<std::string> pattern;
};

struct Rule {
  std::string name;
  int line = 0;
  std::vector<AttributeCondition> when;
  std::optional<HistoryCondition> history;
  std::string action;
};

struct RuleSet {
  std::vector<Rule> rules;
};

// Answers history questions; the real one reads the database (cached).
class HistorySource {
 public:
  virtual ~HistorySource() = default;
  // nullopt when the database cannot tell now (then the condition fails).
  virtual std::optional<ClientHistory> history(const std::string& client_address,
                                               std::int64_t within_us) = 0;
};

struct Decision {
  std::string action = "DUNNO";
  std::string rule;  // empty when no rule matched
};

Result<RuleSet> parse_rules(const std::string& yaml, const std::string& name);
Result<RuleSet> load_rules(const std::string& path);

Decision decide(const RuleSet& rules, const Request& request, HistorySource* history);

}  // namespace smtpscope::policy
