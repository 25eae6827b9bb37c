// Patterns: named, explained shapes of a session, declared in YAML
// (conf/patterns.yaml, built in; users add their own without recompiling).
// A pattern matches when its stage regex is found in the session's stage
// string and all its conditions hold on the SessionFacts and on the
// client's timing up to and including that session (ClientTiming: regular
// interval, mean interval, largest burst, sessions so far; a caller that
// does not know it passes an empty one, which no regular_interval: true,
// interval_s, burst_at_least or sessions_at_least >= 1 passes). Stage regexes are
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

#include "client_timing.h"
#include "result.h"
#include "session_facts.h"

namespace re2 {
class RE2;
}

namespace smtpscope::analysis {

// A condition on a fact the sensors may not know (the sender of a
// transaction only the log saw): which of true, false and unknown pass.
struct Tristate {
  bool if_true = false, if_false = false, if_unknown = false;
  bool accepts(std::optional<bool> fact) const {
    return fact ? (*fact ? if_true : if_false) : if_unknown;
  }
};

// What the log's disconnect counters say of one command (mail=0/1: sent,
// failed, all-failed). A session without counters passes none.
enum class CommandState { none, sent, ok, failed, all_failed, all_ok };

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
  std::optional<Tristate> retried_same_envelope, null_sender;
  std::optional<bool> helo_refused, pipelining, pregreet, non_smtp;
  std::optional<int> rset_at_least, delivered_at_least;
  std::vector<std::pair<std::string, CommandState>> commands;  // from the log's counters
  std::optional<std::string> rejected;  // temporary (all 4xx), permanent (a 5xx), none
  // Patterns this one explains away: when both match, only this is kept
  // (a verification probe is not also "quits with an accepted recipient").
  std::vector<std::string> supersedes;
  std::optional<double> min_gap_s;
  std::vector<std::string> lost_after, screen_verdict;
  // On the client's timing (ClientTiming).
  std::optional<bool> regular_interval;
  std::optional<std::pair<double, double>> interval_s;  // mean interval within [low, high]
  std::optional<int> burst_at_least, sessions_at_least;
};

struct PatternSet {
  std::vector<Pattern> patterns;
};

Result<PatternSet> parse_patterns(const std::string& yaml, const std::string& name);
Result<PatternSet> load_patterns(const std::string& path);
// The patterns shipped in conf/patterns.yaml, built into the binary.
const std::string& builtin_patterns_yaml();

bool matches(const Pattern& pattern, const SessionFacts& facts, const ClientTiming& timing = {});
// Every matching pattern, in file order (the first names the session),
// without those a matching one supersedes.
std::vector<const Pattern*> match_all(const PatternSet& set, const SessionFacts& facts,
                                      const ClientTiming& timing = {});

}  // namespace smtpscope::analysis
