#include "rules.h"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include <random>
#include <regex>

namespace smtpscope::policy {
namespace {

Request request(std::vector<std::pair<std::string, std::string>> attributes) {
  Request r;
  r.attributes = std::move(attributes);
  return r;
}

class FixedHistory final : public HistorySource {
 public:
  explicit FixedHistory(std::optional<ClientHistory> value) : value_(value) {}
  std::optional<ClientHistory> history(const std::string& client, std::int64_t within) override {
    asked_client = client;
    asked_within = within;
    return value_;
  }
  std::string asked_client;
  std::int64_t asked_within = 0;

 private:
  std::optional<ClientHistory> value_;
};

const char* rules_yaml = R"(rules:
  - name: block-one
    when:
      protocol_state: RCPT
      recipient: {in: [blocked@test.example, other@test.example]}
    action: REJECT policy says no
  - name: bare-ip-helo
    when:
      helo_name: {matches: "^\\[?[0-9.]+\\]?$"}
    action: "PREPEND X-Smtpscope-Quirk: bare IP HELO"
  - name: resetters
    when:
      protocol_state: RCPT
      sasl_username: {empty: true}
    client_history:
      aborted_transactions_at_least: 2
      within: 1h
    action: DEFER_IF_PERMIT 4.7.1 try again later
)";

TEST(Rules, FirstMatchingRuleAnswers) {
  auto rules = parse_rules(rules_yaml, "rules.yaml");
  ASSERT_TRUE(rules) << rules.message();
  EXPECT_EQ(rules.value().rules.size(), 3u);
  const Decision d = decide(rules.value(), request({{"protocol_state", "RCPT"},
                                                    {"recipient", "other@test.example"}}),
                            nullptr);
  EXPECT_EQ(d.action, "REJECT policy says no");
  EXPECT_EQ(d.rule, "block-one");
  EXPECT_EQ(decide(rules.value(), request({{"helo_name", "[192.0.2.1]"}}), nullptr).rule,
            "bare-ip-helo");
}

TEST(Rules, NothingMatchingMeansDunno) {
  auto rules = parse_rules(rules_yaml, "rules.yaml");
  const Decision d = decide(rules.value(), request({{"helo_name", "mx.example.com"}}), nullptr);
  EXPECT_EQ(d.action, "DUNNO");
  EXPECT_TRUE(d.rule.empty());
  EXPECT_EQ(decide(RuleSet{}, request({}), nullptr).action, "DUNNO");
}

// A hostile 64 KiB value against a recursive pattern overflowed the stack
// of libstdc++'s regex (measured: crash from about 10,000 bytes), so only a
// 2048-byte prefix was tested and a mismatch after it went unseen. RE2
// searches the whole value in linear time, without recursion.
TEST(Rules, RegexSeesTheWholeOfALongValue) {
  auto rules = parse_rules("rules:\n  - name: ab\n    when:\n      helo_name: {matches: "
                           "\"^(a|b)*$\"}\n    action: REJECT no\n"
                           "  - name: ends-in-c\n    when:\n      helo_name: {matches: "
                           "\"c$\"}\n    action: WARN ends in c\n",
                           "r.yaml");
  ASSERT_TRUE(rules) << rules.message();
  const std::string hostile(64 * 1024, 'a');
  EXPECT_EQ(decide(rules.value(), request({{"helo_name", hostile}}), nullptr).rule, "ab");
  const std::string late_mismatch = hostile + "c";
  EXPECT_EQ(decide(rules.value(), request({{"helo_name", late_mismatch}}), nullptr).rule,
            "ends-in-c");
  EXPECT_EQ(decide(rules.value(), request({{"helo_name", "abd"}}), nullptr).action, "DUNNO");
}

// Values are bytes, as Postfix passes them: `.` matches a byte that is not
// UTF-8, and a pattern's UTF-8 text matches the same bytes in the value.
TEST(Rules, RegexMatchesBytes) {
  auto rules = parse_rules("rules:\n  - name: any\n    when:\n      helo_name: {matches: "
                           "\"^x.y$\"}\n    action: WARN any\n"
                           "  - name: utf8\n    when:\n      helo_name: {matches: "
                           "\"^caf\xc3\xa9$\"}\n    action: WARN utf8\n",
                           "r.yaml");
  ASSERT_TRUE(rules) << rules.message();
  EXPECT_EQ(decide(rules.value(), request({{"helo_name", "x\xffy"}}), nullptr).rule, "any");
  EXPECT_EQ(decide(rules.value(), request({{"helo_name", "caf\xc3\xa9"}}), nullptr).rule, "utf8");
  EXPECT_EQ(decide(rules.value(), request({{"helo_name", "cafe"}}), nullptr).action, "DUNNO");
}

// The shipped example's regexes were written for std::regex (ECMAScript);
// RE2 must match the same values: compared on random HELO-like strings.
TEST(Rules, TheExamplesRegexesMeanWhatTheyMeantUnderECMAScript) {
  auto rules = load_rules(std::string(SMTPSCOPE_SOURCE_DIR) + "/conf/rules.example.yaml");
  ASSERT_TRUE(rules) << rules.message();
  const std::string alphabet = "[]0123456789.:aZ-_ \xff";
  std::mt19937 random(13);
  int compared = 0;
  for (const auto& rule : rules.value().rules) {
    for (const auto& c : rule.when) {
      if (c.kind != AttributeCondition::Kind::matches) continue;
      const std::string text = c.pattern->pattern();
      const std::regex ecmascript(text, std::regex::ECMAScript);
      int found = 0;
      for (int n = 0; n < 5000; ++n) {
        std::string value;
        for (std::size_t i = random() % 12; i > 0; --i) value += alphabet[random() % alphabet.size()];
        if (n % 2 == 0) value = (n % 4 == 0 ? "[" : "") + std::to_string(random()) + "." +
                                std::to_string(n) + (n % 8 == 0 ? "]" : "");
        const bool re2_found = re2::RE2::PartialMatch(value, *c.pattern);
        ASSERT_EQ(re2_found, std::regex_search(value, ecmascript)) << text << " on " << value;
        found += re2_found;
      }
      EXPECT_GT(found, 0) << text;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 1);
}

TEST(Rules, HistoryConditionsAskTheDatabase) {
  auto rules = parse_rules(rules_yaml, "rules.yaml");
  const Request r = request({{"protocol_state", "RCPT"}, {"client_address", "192.0.2.9"}});
  FixedHistory two_aborts(ClientHistory{3, 2, 0, {}, {}, {}});
  EXPECT_EQ(decide(rules.value(), r, &two_aborts).rule, "resetters");
  EXPECT_EQ(two_aborts.asked_client, "192.0.2.9");
  EXPECT_EQ(two_aborts.asked_within, 3'600'000'000);
  FixedHistory one_abort(ClientHistory{3, 1, 0, {}, {}, {}});
  EXPECT_EQ(decide(rules.value(), r, &one_abort).action, "DUNNO");
  FixedHistory unknown(std::nullopt);  // database unavailable: the rule does not match
  EXPECT_EQ(decide(rules.value(), r, &unknown).action, "DUNNO");
}

TEST(Rules, HistoryKnowsQuirksFingerprintsAndPatterns) {
  auto rules = parse_rules(R"(rules:
  - name: known-proxy
    when:
      protocol_state: RCPT
    client_history:
      pattern: intercepting-proxy
      helo_quirk: bare-ip
    action: "PREPEND X-Smtpscope: client behind an intercepting proxy"
)",
                           "r.yaml");
  ASSERT_TRUE(rules) << rules.message();
  const Request r = request({{"protocol_state", "RCPT"}, {"client_address", "192.0.2.60"}});
  FixedHistory proxy(ClientHistory{3, 3, 0, {"bare-ip"}, {"1a2b3c4d"}, {"intercepting-proxy"}});
  EXPECT_EQ(decide(rules.value(), r, &proxy).action,
            "PREPEND X-Smtpscope: client behind an intercepting proxy");
  FixedHistory other_quirk(ClientHistory{3, 3, 0, {"non-fqdn"}, {"1a2b3c4d"}, {"intercepting-proxy"}});
  EXPECT_EQ(decide(rules.value(), r, &other_quirk).action, "DUNNO");
}

TEST(Rules, EmptyFileMeansObserveOnly) {
  auto rules = parse_rules("", "empty.yaml");
  ASSERT_TRUE(rules);
  EXPECT_TRUE(rules.value().rules.empty());
}

struct BadRules {
  const char* yaml;
  const char* message;
};

class RuleErrors : public ::testing::TestWithParam<BadRules> {};

TEST_P(RuleErrors, NameFileLineAndReason) {
  auto rules = parse_rules(GetParam().yaml, "r.yaml");
  ASSERT_FALSE(rules);
  EXPECT_EQ(rules.message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    Messages, RuleErrors,
    ::testing::Values(
        BadRules{"rules:\n  - name: x\n    action: ACCEPT_ALL\n",
                 "r.yaml:3: action \"ACCEPT_ALL\" is not an access(5) action (DUNNO, OK, REJECT "
                 "text, DEFER_IF_PERMIT text, 4NN/5NN text, PREPEND header: value, WARN text, ...)"},
        BadRules{"rules:\n  - name: x\n    when:\n      helo_name: {matches: \"([\"}\n"
                 "    action: DUNNO\n",
                 "r.yaml:4: when.helo_name: bad regular expression \"([\": missing ]: ["},
        // RE2 has no lookaround and no backreferences: refused, not misread
        BadRules{"rules:\n  - name: x\n    when:\n      helo_name: {matches: \"^(?!mx)\"}\n"
                 "    action: DUNNO\n",
                 "r.yaml:4: when.helo_name: bad regular expression \"^(?!mx)\": invalid perl "
                 "operator: (?!"},
        BadRules{"rules:\n  - name: x\n    when:\n      helo_name: {matches: \"(a)\\\\1\"}\n"
                 "    action: DUNNO\n",
                 "r.yaml:4: when.helo_name: bad regular expression \"(a)\\1\": invalid escape "
                 "sequence: \\1"},
        BadRules{"rules:\n  - name: x\n    action: DUNNO\n    colour: red\n",
                 "r.yaml:4: unknown rule key \"colour\" (name, when, client_history, action)"},
        BadRules{"rules:\n  - action: DUNNO\n", "r.yaml:2: rule without a name"},
        // found by the fuzzer: the line was missing
        BadRules{"rules:\n  - name: x\n    action: DUNNO\n  - just words\n",
                 "r.yaml:4: a rule is a mapping with name, when, action"},
        BadRules{"rules:\n  - name: x\n", "r.yaml:2: rule \"x\" has no action"},
        BadRules{"rules:\n  - name: x\n    when:\n      a: {near: b}\n    action: DUNNO\n",
                 "r.yaml:4: when.a: unknown test \"near\" (use matches, in or empty)"},
        BadRules{"rules:\n  - name: x\n    client_history:\n      within: 3w\n    action: OK\n",
                 "r.yaml:4: client_history.within: bad duration \"3w\" (use e.g. 90s, 15m, "
                 "24h, 7d)"},
        BadRules{"rule:\n  - name: x\n", "r.yaml: expected \"rules:\" followed by a list of rules"},
        BadRules{"rules: [\n", "r.yaml:2: end of sequence flow not found"},
        BadRules{"rules:\n  - name: x\n    action: DUNNO\n    action: OK\n",
                 "r.yaml:4: key \"action\" appears twice in one mapping"}),
    [](const ::testing::TestParamInfo<BadRules>& param) {
      return "case" + std::to_string(param.index);
    });

TEST(Rules, ActionsCannotInjectProtocolLines) {
  auto rules = parse_rules("rules:\n  - name: x\n    action: \"REJECT a\\n\\naction=OK\"\n", "r");
  ASSERT_FALSE(rules);
}

TEST(Rules, NumericReplyCodesAreActions) {
  EXPECT_TRUE(parse_rules("rules:\n  - name: x\n    action: 450 4.7.1 later\n", "r"));
  EXPECT_FALSE(parse_rules("rules:\n  - name: x\n    action: 250 fine\n", "r"));
}

TEST(Rules, TheShippedExampleLoads) {
  auto rules = load_rules(std::string(SMTPSCOPE_SOURCE_DIR) + "/conf/rules.example.yaml");
  ASSERT_TRUE(rules) << rules.message();
  ASSERT_EQ(rules.value().rules.size(), 3u);
  EXPECT_EQ(decide(rules.value(), request({{"protocol_state", "RCPT"}, {"helo_name", "[192.0.2.1]"}}),
                   nullptr)
                .rule,
            "bare-ip-helo");
}

}  // namespace
}  // namespace smtpscope::policy
