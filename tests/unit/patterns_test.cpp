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

std::vector<std::string> names(const std::vector<const Pattern*>& found) {
  std::vector<std::string> out;
  for (const auto* p : found) out.push_back(p->name);
  return out;
}

// Facts as a milter session has them: its senders known.
SessionFacts facts(std::string stages) {
  SessionFacts f;
  f.stages = std::move(stages);
  f.null_sender = false;
  f.retried_same_envelope = false;
  return f;
}

// Facts as a log-only session has them: counters, senders unknown.
SessionFacts logged(std::string stages, std::map<std::string, std::string> counters) {
  SessionFacts f;
  f.stages = std::move(stages);
  f.have_log = true;
  f.log_counters = std::move(counters);
  return f;
}

TEST(Patterns, TheShippedFileLoadsWithEveryPatternTheIssueNames) {
  const PatternSet set = builtin();
  std::vector<std::string> names;
  for (const auto& p : set.patterns) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "intercepting-proxy", "verification-probe", "connection-reuse",
                       "parallel-auth-guessing", "auth-guessing", "mail-refused", "temp-rejected", "content-rejected",
                       "abandon-after-rejected-recipient", "abort-after-accepted-recipient",
                       "monitoring-check", "greets-and-quits", "gives-up-after-refused-helo", "scanner",
                       "non-smtp-speaker", "pregreet-bot", "lost-connection", "timeout",
                       "pipelining-violation", "postscreen-verdict", "non-smtp-command"}));
}

TEST(Patterns, NameEachCase) {
  SessionFacts proxy = facts("C H M R +10s A M R D E Q");
  proxy.retried_same_envelope = true;
  EXPECT_EQ(first_match(proxy), "intercepting-proxy");
  SessionFacts reset_only = facts("C H M R A M R D E Q");  // a different envelope
  EXPECT_EQ(first_match(reset_only), "");

  // Address verification whatever the sender (<>, double-bounce@, an Exim
  // callout's) and however many HELOs (STARTTLS, then EHLO again); only the
  // probe is named, not also "quits with an accepted recipient".
  SessionFacts probe = facts("C H M R A Q");
  probe.null_sender = true;
  EXPECT_EQ(names(match_all(builtin(), probe)), std::vector<std::string>{"verification-probe"});
  probe.null_sender = false;
  probe.senders = {"double-bounce@mx.example.org"};
  EXPECT_EQ(names(match_all(builtin(), probe)), std::vector<std::string>{"verification-probe"});
  EXPECT_EQ(first_match(facts("C H H M R A Q")), "verification-probe");
  EXPECT_EQ(first_match(logged("C H H M R A Q", {{"ehlo", "2"}, {"starttls", "1"}, {"mail", "1"},
                                                 {"rcpt", "1"}, {"rset", "1"}, {"quit", "1"}})),
            "verification-probe");
  // Several recipients and a pause: not a probe.
  EXPECT_EQ(first_match(facts("C H M R R +30s A Q")), "abort-after-accepted-recipient");

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
  pregreet.pregreet = true;
  EXPECT_EQ(names(match_all(builtin(), pregreet)), std::vector<std::string>{"pregreet-bot"});
}

// The log-only shapes of real traffic (tests/fixtures/logs/real), named
// from the disconnect counters.
TEST(Patterns, RealTrafficFromTheLogAlone) {
  // postfix/smtps/smtpd: ehlo=1 auth=0/1 commands=1/2, lost connection after AUTH
  SessionFacts guessing = logged("C H L", {{"ehlo", "1"}, {"auth", "0/1"}, {"commands", "1/2"}});
  guessing.lost_after = "AUTH";
  EXPECT_EQ(names(match_all(builtin(), guessing)), std::vector<std::string>{"auth-guessing"});
  SessionFacts logged_in = logged("C H M R D E Q", {{"ehlo", "1"}, {"auth", "1"}, {"mail", "1"},
                                                    {"rcpt", "1"}, {"data", "1"}, {"quit", "1"}});
  EXPECT_EQ(first_match(logged_in), "");

  // ehlo=1 mail=0/1 quit=1: 530 Must issue a STARTTLS command first
  EXPECT_EQ(first_match(logged("C H Q", {{"ehlo", "1"}, {"mail", "0/1"}, {"quit", "1"}})),
            "mail-refused");

  // 450 4.1.8 Sender address rejected: Domain not found; rcpt=0/1 data=0/1 rset=1 quit=1
  SessionFacts temp = logged("C H M J A Q", {{"ehlo", "1"}, {"mail", "1"}, {"rcpt", "0/1"},
                                             {"data", "0/1"}, {"rset", "1"}, {"quit", "1"}});
  temp.temp_rejects = 1;
  EXPECT_EQ(names(match_all(builtin(), temp)), std::vector<std::string>{"temp-rejected"});
  temp.temp_rejects = 0;
  temp.perm_rejects = 1;
  EXPECT_EQ(first_match(temp), "abandon-after-rejected-recipient");

  // ehlo=1 mail=1 rcpt=1 data=0/1 quit=1 (cleanup: reject: header ...)
  EXPECT_EQ(first_match(logged("C H M R D A Q", {{"ehlo", "1"}, {"mail", "1"}, {"rcpt", "1"},
                                                 {"data", "0/1"}, {"quit", "1"}})),
            "content-rejected");
  // ehlo=2 starttls=1 quit=1 commands=4: a monitor once it is regular
  EXPECT_EQ(first_match(logged("C H H Q", {{"ehlo", "2"}, {"starttls", "1"}, {"quit", "1"}})),
            "greets-and-quits");
  // commands=0/0 after CONNECT; ehlo=1 starttls=1 then lost after STARTTLS
  EXPECT_EQ(first_match(logged("C L", {{"commands", "0/0"}})), "scanner");
  SessionFacts census = logged("C H T", {{"ehlo", "1"}, {"starttls", "1"}, {"commands", "2"}});
  EXPECT_EQ(names(match_all(builtin(), census)), std::vector<std::string>{"scanner"});
  // unknown=0/1 commands=0/1: never greeted, spoke something else
  EXPECT_EQ(first_match(logged("C U L", {{"unknown", "0/1"}, {"commands", "0/1"}})),
            "non-smtp-speaker");

  // The proxy from the log: senders unknown, the shape is the evidence.
  SessionFacts proxy = logged("C H M R A +10s M R D E Q",
                              {{"ehlo", "1"}, {"mail", "2"}, {"rcpt", "2"}, {"data", "1"},
                               {"rset", "2"}, {"noop", "3"}, {"quit", "1"}});
  proxy.rset = 2;
  EXPECT_EQ(first_match(proxy), "intercepting-proxy");
  // Reuse: "C H M R D E M R D E Q" with rset=2 from the counters alone.
  SessionFacts reuse = logged("C H M R D E M R D E Q", {{"mail", "2"}, {"rset", "2"}});
  reuse.rset = 2;
  EXPECT_EQ(first_match(reuse), "connection-reuse");
  // Without counters no `commands` condition holds.
  EXPECT_EQ(first_match(facts("C L")), "");
}

TEST(Patterns, BadConditionsAreReportedWithTheirLine) {
  const char* bad[] = {
      "commands: {auth: sometimes}",
      "commands: [auth]",
      "rejected: maybe",
      "null_sender: perhaps",
  };
  for (const char* condition : bad) {
    const std::string yaml = std::string("patterns:\n  - name: x\n    title: t\n    stages: '.'\n"
                                         "    when:\n      ") + condition +
                             "\n    explanation: e\n    advice: a\n";
    auto set = parse_patterns(yaml, "mine.yaml");
    ASSERT_FALSE(set) << condition;
    EXPECT_NE(set.message().find("mine.yaml:6"), std::string::npos) << set.message();
  }
  auto unknown = parse_patterns("patterns:\n  - name: x\n    title: t\n    stages: '.'\n"
                                "    supersedes: [nothing]\n    explanation: e\n    advice: a\n",
                                "mine.yaml");
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.message().find("no pattern named \"nothing\""), std::string::npos);
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
  if (random() % 5 != 0) {
    stages += " H";
  } else if (random() % 2 == 0) {
    stages += " U";  // no greeting, an unknown command
  }
  const int transactions = static_cast<int>(random() % 4);
  for (int t = 0; t < transactions; ++t) {
    stages += " M";
    for (int r = 0, n = 1 + static_cast<int>(random() % 3); r < n; ++r) stages += pick({" R", " J"});
    stages += pause();
    stages += pick({" A", " D E", " D E", " D A"});  // aborted, queued, content refused
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
                    "p.yaml:7: unknown key \"extra\" (name, title, stages, when, weight, supersedes, explanation, "
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

// The client's timing up to the session, built as a store would keep it.
ClientTiming every(double seconds, int sessions) {
  TimingSums sums;
  for (int i = 0; i < sessions; ++i) {
    sums.add(static_cast<std::int64_t>(1'700'000'000 + i * seconds) * 1'000'000);
  }
  return sums.timing();
}

ClientTiming burst_of(int connections) {
  TimingSums sums;
  for (int i = 0; i < connections; ++i) sums.add(1'700'000'000'000'000 + i * 20'000);
  return sums.timing();
}

// Issue 14 item 5: patterns on the client's facts over time.
TEST(Patterns, TimingConditionsNameAMonitorAndParallelGuessing) {
  const PatternSet set = builtin();
  const SessionFacts check = logged("C H H Q", {{"ehlo", "2"}, {"starttls", "1"}, {"quit", "1"}});
  EXPECT_EQ(names(match_all(set, check, every(60, 30))),
            std::vector<std::string>{"monitoring-check"});
  // Its first sessions (no interval yet) and an irregular client.
  EXPECT_EQ(names(match_all(set, check, every(60, 3))),
            std::vector<std::string>{"greets-and-quits"});
  TimingSums irregular;
  for (std::int64_t s : {0, 5, 300, 310, 4000, 4100, 9000}) irregular.add(s * 1'000'000);
  EXPECT_EQ(names(match_all(set, check, irregular.timing())),
            std::vector<std::string>{"greets-and-quits"});

  SessionFacts guess = logged("C H L", {{"ehlo", "1"}, {"auth", "0/1"}, {"commands", "1/2"}});
  guess.lost_after = "AUTH";
  EXPECT_EQ(names(match_all(set, guess, burst_of(20))),
            std::vector<std::string>{"parallel-auth-guessing"});
  EXPECT_EQ(names(match_all(set, guess, burst_of(9))), std::vector<std::string>{"auth-guessing"});
  EXPECT_EQ(names(match_all(set, guess)), std::vector<std::string>{"auth-guessing"});
}

TEST(Patterns, TimingConditionsParseAndHold) {
  auto set = parse_patterns(R"(patterns:
  - name: minutely
    title: t
    stages: '.'
    explanation: e
    advice: a
    when: {interval_s: [50, 70], sessions_at_least: 5, regular_interval: true}
  - name: burst
    title: t
    stages: '.'
    explanation: e
    advice: a
    when: {burst_at_least: 10}
)", "test");
  ASSERT_TRUE(set) << set.message();
  const SessionFacts f = facts("C H Q");
  EXPECT_EQ(names(match_all(set.value(), f, every(60, 6))), std::vector<std::string>{"minutely"});
  EXPECT_TRUE(match_all(set.value(), f, every(60, 4)).empty());    // 4 sessions so far
  EXPECT_TRUE(match_all(set.value(), f, every(120, 10)).empty());  // every 2 min
  EXPECT_TRUE(match_all(set.value(), f).empty());                  // timing unknown
  EXPECT_EQ(names(match_all(set.value(), f, burst_of(10))), std::vector<std::string>{"burst"});

  for (const char* bad : {"[70, 50]", "[50]", "fast", "[-1, 5]"}) {
    auto wrong = parse_patterns(std::string("patterns:\n  - {name: n, title: t, stages: '.', "
                                            "explanation: e, advice: a, when: {interval_s: ") +
                                    bad + "}}\n",
                                "test.yaml");
    ASSERT_FALSE(wrong) << bad;
    EXPECT_NE(wrong.message().find("test.yaml:2: interval_s"), std::string::npos)
        << wrong.message();
  }
}

}  // namespace
}  // namespace smtpscope::analysis
