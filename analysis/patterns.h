// Patterns: named, explained shapes of a session, declared in YAML
// (conf/patterns.yaml, built in; users add their own without recompiling).
// A pattern matches when its stage regex is found in the session's stage
// string and all its conditions hold on the SessionFacts. Stage regexes are
// RE2 (bytes, Perl-like syntax without backreferences or lookaround):
// matching takes time linear in the stage string and bounded memory and
// stack however long the session (std::regex recursed per character and
// crashed on a session of ~6,000 messages). Loading reports the file, line
// and reason of the first problem. Immutable once loaded; matching is
// thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "result.h"
#include "session_facts.h"

namespace re2 {
class RE2;
}

namespace smtpscope::analysis {

struct Pattern {
  std::string name;
  std::string title;
  std::string stages_text;
  std::shared_ptr<const re2::RE2> stages;
  std::string explanation;
  std::string advice;
  double weight = 1.0;  // how much it counts towards a client's anomaly score; 0 = harmless
  int line = 0;
  // Conditions (unset = not tested).
  std::optional<bool> retried_same_envelope, null_sender, helo_refused, pipelining, non_smtp;
  std::optional<int> rset_at_least, delivered_at_least;
  std::optional<double> min_gap_s;
  std::vector<std::string> lost_after, screen_verdict;
};

struct PatternSet {
  std::vector<Pattern> patterns;
};

Result<PatternSet> parse_patterns(const std::string& yaml, const std::string& name);
Result<PatternSet> load_patterns(const std::string& path);
// The patterns shipped in conf/patterns.yaml, built into the binary.
const std::string& builtin_patterns_yaml();

bool matches(const Pattern& pattern, const SessionFacts& facts);
// Every matching pattern, in file order (the first names the session).
std::vector<const Pattern*> match_all(const PatternSet& set, const SessionFacts& facts);

}  // namespace smtpscope::analysis
