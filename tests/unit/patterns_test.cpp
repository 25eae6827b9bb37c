#include "patterns.h"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include <map>
#include <random>
#include <regex>

namespace smtpscope::analysis {
namespace {

PatternSet builtin() {
  auto set = parse_patterns(builtin_patterns_yaml(), "conf/patterns.yaml");
  EXPECT_TRUE(set) << set.message();
  return std::move(set).value();
}

std::string first_match(const SessionFacts& facts) {
  static const PatternSet set = builtin();
  auto found = match_all(set, facts);
  return found.empty() ? "" : found.front()->name;
}

SessionFacts facts(std::string stages) {
  SessionFacts f;
  f.stages = std::move(stages);
  return f;
}

TEST(Patterns, TheShippedFileLoadsWithEveryPatternTheIssueNames) {
  const PatternSet set = builtin();
  std::vector<std::string> names;
  for (const auto& p : set.patterns) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "intercepting-proxy", "verification-probe", "connection-reuse",
                       "abandon-after-rejected-recipient", "abort-after-accepted-recipient",
                       "lost-connection", "timeout", "pipelining-violation", "postscreen-verdict",
                       "non-smtp-command", "gives-up-after-refused-helo"}));
}

TEST(Patterns, NameEachCase) {
  SessionFacts proxy = facts("C H M R +10s A M R D E Q");
  proxy.retried_same_envelope = true;
  EXPECT_EQ(first_match(proxy), "intercepting-proxy");
  SessionFacts reset_only = facts("C H M R A M R D E Q");  // a different envelope
  EXPECT_EQ(first_match(reset_only), "");

  SessionFacts probe = facts("C H M R A Q");
  probe.null_sender = true;
  EXPECT_EQ(first_match(probe), "verification-probe");
  probe.null_sender = false;
  EXPECT_EQ(first_match(probe), "abort-after-accepted-recipient");

  SessionFacts reuse = facts("C H M R D E M R D E M R D E L");
  reuse.rset = 2;
  EXPECT_EQ(first_match(reuse), "connection-reuse");
  reuse.rset = 0;
  EXPECT_EQ(first_match(reuse), "");

  EXPECT_EQ(first_match(facts("C H M J A Q")), "abandon-after-rejected-recipient");

  SessionFacts lost = facts("C H M R A L");
  lost.lost_after = "RCPT";
  EXPECT_EQ(first_match(lost), "lost-connection");
  lost.lost_after = "EHLO";
  EXPECT_EQ(first_match(lost), "");

  EXPECT_EQ(first_match(facts("C H T")), "timeout");
  SessionFacts pipelining = facts("C H Q");
  pipelining.pipelining = true;
  EXPECT_EQ(first_match(pipelining), "pipelining-violation");
  SessionFacts pregreet = facts("C L");
  pregreet.screen_verdicts = {"PREGREET"};
  EXPECT_EQ(first_match(pregreet), "postscreen-verdict");
  SessionFacts non_smtp = facts("C Q");
  non_smtp.non_smtp = true;
  EXPECT_EQ(first_match(non_smtp), "non-smtp-command");
  SessionFacts refused = facts("C Q");
  refused.helo_refused = true;
  EXPECT_EQ(first_match(refused), "gives-up-after-refused-helo");
  EXPECT_EQ(first_match(facts("C H M R D E Q")), "");
}

TEST(Patterns, UsersAddTheirOwn) {
  auto set = parse_patterns(R"(patterns:
  - name: slow-sender
    title: Pauses a long time
    stages: '\+\d+s'
    when:
      min_gap_s: 30
    explanation: Long pauses.
    advice: Look at the network.
)",
                            "mine.yaml");
  ASSERT_TRUE(set) << set.message();
  SessionFacts f = facts("C H +45s M R D E Q");
  f.max_gap_s = 45;
  EXPECT_EQ(match_all(set.value(), f).size(), 1u);
  f.max_gap_s = 10;
  EXPECT_TRUE(match_all(set.value(), f).empty());
}

// A session-like stage string: connect, maybe HELO, transactions of MAIL,
// RCPTs (accepted or rejected), then abort or DATA and end of message,
// pauses here and there, an end; now and then a letter out of place.
std::string random_stages(std::mt19937& random) {
  auto pick = [&random](std::initializer_list<const char*> choices) {
    return std::string(choices.begin()[random() % choices.size()]);
  };
  auto pause = [&] { return random() % 4 == 0 ? pick({" +2s", " +10s", " +45s"}) : ""; };
  std::string stages = "C";
  if (random() % 5 != 0) stages += " H";
  const int transactions = static_cast<int>(random() % 4);
  for (int t = 0; t < transactions; ++t) {
    stages += " M";
    for (int r = 0, n = 1 + static_cast<int>(random() % 3); r < n; ++r) stages += pick({" R", " J"});
    stages += pause();
    stages += random() % 2 == 0 ? " A" : " D E";
    stages += pause();
    if (random() % 8 == 0) stages += pick({" U", " H", " R", " E", " M"});
  }
  return stages + pick({" Q", " L", " T", " K", " Z"});
}

// The shipped stage regexes were written for std::regex (ECMAScript). RE2
// must find them in the same stage strings: compared on many random
// session-like strings, short enough for std::regex.
TEST(Patterns, ShippedRegexesMeanWhatTheyMeantUnderECMAScript) {
  const PatternSet set = builtin();
  std::vector<std::regex> ecmascript;
  for (const auto& p : set.patterns) ecmascript.emplace_back(p.stages_text, std::regex::ECMAScript);
  std::map<std::string, int> found;
  std::mt19937 random(13);
  for (int n = 0; n < 5000; ++n) {
    const std::string stages = random_stages(random);
    for (std::size_t i = 0; i < set.patterns.size(); ++i) {
      const bool re2_found = re2::RE2::PartialMatch(stages, *set.patterns[i].stages);
      ASSERT_EQ(re2_found, std::regex_search(stages, ecmascript[i]))
          << set.patterns[i].name << " on \"" << stages << "\"";
      found[set.patterns[i].name] += re2_found;
    }
  }
  for (const auto& p : set.patterns) EXPECT_GT(found[p.name], 0) << p.name << " never found";
}

struct BadPatterns {
  const char* yaml;
  const char* message;
};

class PatternErrors : public ::testing::TestWithParam<BadPatterns> {};

TEST_P(PatternErrors, NameFileLineAndReason) {
  auto set = parse_patterns(GetParam().yaml, "p.yaml");
  ASSERT_FALSE(set);
  EXPECT_EQ(set.message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Messages, PatternErrors,
    ::testing::Values(
        BadPatterns{"patterns:\n  - name: x\n    title: t\n    stages: '('\n"
                    "    explanation: e\n    advice: a\n",
                    "p.yaml:4: stages: bad regular expression \"(\": missing ): ("},
        BadPatterns{"patterns:\n  - name: x\n    title: t\n    stages: 'M R(?= A)'\n"
                    "    explanation: e\n    advice: a\n",
                    "p.yaml:4: stages: bad regular expression \"M R(?= A)\": invalid perl "
                    "operator: (?="},
        BadPatterns{"patterns:\n  - name: x\n    title: t\n    stages: 'Q'\n    when:\n"
                    "      colour: red\n    explanation: e\n    advice: a\n",
                    "p.yaml:6: unknown condition \"colour\""},
        BadPatterns{"patterns:\n  - name: x\n    title: t\n    stages: 'Q'\n    when:\n"
                    "      rset_at_least: many\n    explanation: e\n    advice: a\n",
                    "p.yaml:6: rset_at_least: expected a number"},
        BadPatterns{"patterns:\n  - name: x\n    stages: 'Q'\n    explanation: e\n    advice: a\n",
                    "p.yaml:2: pattern without title"},
        BadPatterns{"patterns:\n  - name: x\n    title: t\n    explanation: e\n    advice: a\n",
                    "p.yaml:2: pattern \"x\" has no stages"},
        BadPatterns{"patterns:\n  - name: x\n    title: t\n    stages: Q\n    explanation: e\n"
                    "    advice: a\n    extra: 1\n",
                    "p.yaml:7: unknown key \"extra\" (name, title, stages, when, weight, explanation, "
                    "advice)"},
        BadPatterns{"patterns:\n  - {name: x, title: t, stages: Q, explanation: e, advice: a}\n"
                    "  - {name: x, title: t, stages: Q, explanation: e, advice: a}\n",
                    "p.yaml:3: pattern name \"x\" used twice"},
        BadPatterns{"patterns:\n  - name: x\n    title: t\n    stages: Q\n    stages: H\n"
                    "    explanation: e\n    advice: a\n",
                    "p.yaml:5: key \"stages\" appears twice in one mapping"},
        BadPatterns{"pattern: []\n", "p.yaml: expected \"patterns:\" followed by a list"}),
    [](const ::testing::TestParamInfo<BadPatterns>& param) {
      return "case" + std::to_string(param.index);
    });

}  // namespace
}  // namespace smtpscope::analysis
