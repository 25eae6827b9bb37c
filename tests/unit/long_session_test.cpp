// One very long session through the whole per-session analysis (facts,
// patterns, fingerprint, the per-client summary, anomaly score and
// correlation), as `clients`, `report`, `correlate` and `watch` run it:
// a relay's cached connection delivering 10,000 messages, and 20,000
// RCPTs in one session. With std::regex the pattern match recursed per
// character of the stage string and overflowed the stack (issue 13).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "client_report.h"
#include "fingerprint.h"
#include "patterns.h"
#include "session_facts.h"

namespace smtpscope::analysis {
namespace {

constexpr int cached_messages = 10'000;
constexpr int recipients = 20'000;

const PatternSet& builtin() {
  static const PatternSet set = [] {
    auto loaded = parse_patterns(builtin_patterns_yaml(), "conf/patterns.yaml");
    EXPECT_TRUE(loaded) << loaded.message();
    return std::move(loaded).value();
  }();
  return set;
}

std::vector<std::string> names(const std::vector<const Pattern*>& patterns) {
  std::vector<std::string> out;
  for (const auto* p : patterns) out.push_back(p->name);
  return out;
}

// Events 1 ms apart, so the stage string has no pauses.
class LongSession {
 public:
  explicit LongSession(std::string source) : source_(std::move(source)) {
    s_.client_addr = "192.0.2.25";
    s_.client_name = "relay.example.net";
    s_.protocol = "ESMTP";
    s_.connect_us = 1'700'000'000'000'000;
  }
  LongSession& event(const std::string& stage, std::string argument = "",
                     std::string attributes = "{}") {
    s_.events.push_back(EventRecord{source_, stage, s_.connect_us + 1000 * next_ms_++,
                                    std::nullopt, std::move(argument), std::move(attributes)});
    return *this;
  }
  LongSession& log_close(const std::string& counters) {
    s_.events.push_back(EventRecord{"log", "close", s_.connect_us + 1000 * next_ms_, std::nullopt,
                                    "", counters});
    s_.close_us = s_.connect_us + 1000 * (next_ms_ - 1);  // the last event
    return *this;
  }
  LongSession& transaction(std::string mail_from, std::string outcome, bool data) {
    s_.transactions.push_back(TransactionRecord{
        static_cast<std::int64_t>(s_.transactions.size() + 1), std::move(mail_from), 1, 0, data,
        "", {}, std::move(outcome)});
    return *this;
  }
  SessionRecord build() const { return s_; }

 private:
  std::string source_;
  SessionRecord s_;
  std::int64_t next_ms_ = 0;
};

std::string repeated(const std::string& unit, int times) {
  std::string out;
  for (int i = 0; i < times; ++i) out += unit;
  return out;
}

// smtp-source -m 10000 -s 1 through Postfix with the milter: one connection,
// 10,000 messages, an RSET before each further MAIL, then QUIT.
SessionRecord cached_relay_connection() {
  LongSession s("milter");
  s.event("connect").event("helo", "relay.example.net");
  for (int i = 0; i < cached_messages; ++i) {
    s.event("mail", "<bounce@relay.example.net>", R"({"esmtp":"SIZE=1000"})")
        .event("rcpt", "<user@test.example>", R"({"rejected":"0"})")
        .event("data").event("eom")
        .transaction("<bounce@relay.example.net>", "delivered", true);
  }
  s.event("close").log_close(fmt::format(
      R"({{"ehlo":"1","mail":"{0}","rcpt":"{0}","data":"{0}","rset":"{1}","quit":"1"}})",
      cached_messages, cached_messages - 1));
  return s.build();
}

TEST(LongSession, TenThousandCachedMessagesAreOneConnectionReuse) {
  const SessionRecord session = cached_relay_connection();
  const SessionFacts f = facts_of(session);
  EXPECT_EQ(f.stages, "C H" + repeated(" M R D E", cached_messages) + " Q");
  EXPECT_EQ(f.transactions, cached_messages);
  EXPECT_EQ(f.delivered, cached_messages);
  EXPECT_EQ(f.aborted, 0);
  EXPECT_EQ(f.end, "quit");
  EXPECT_EQ(f.rset, cached_messages - 1);
  EXPECT_EQ(f.retried_same_envelope, false);
  EXPECT_EQ(f.max_gap_s, 0.001);
  EXPECT_EQ(f.notes, std::vector<std::string>{"9999 RSETs outside a transaction (counted by the "
                                              "log, invisible to the milter)"});
  EXPECT_EQ(names(match_all(builtin(), f)), std::vector<std::string>{"connection-reuse"});
  const Fingerprint fp = fingerprint_of(session, f);
  EXPECT_EQ(fp.readable(), "greeting=EHLO helo=fqdn esmtp=SIZE esmtp_case=upper tls=no "
                           "auth=no rset_after_rcpt=no | body=DATA end=quit mailer=-");
}

// What `clients`, `report --client` and `correlate` do with the sessions
// they read: the long one among ordinary ones from other clients.
TEST(LongSession, ClientsReportAndCorrelateSummariseIt) {
  std::vector<SessionRecord> sessions = {cached_relay_connection()};
  for (int i = 0; i < 6; ++i) {
    LongSession other("milter");
    other.event("connect").event("helo", "mx.example.org").event("mail", "<a@example.org>")
        .event("rcpt", "<b@test.example>", R"({"rejected":"0"})").event("data").event("eom")
        .event("close").log_close(R"({"ehlo":"1","mail":"1","rcpt":"1","data":"1","quit":"1"})")
        .transaction("<a@example.org>", "delivered", true);
    SessionRecord s = other.build();
    s.client_addr = "198.51.100." + std::to_string(i + 1);
    sessions.push_back(std::move(s));
  }
  const auto clients = cli::by_client(cli::analyse(sessions, builtin()));
  ASSERT_EQ(clients.size(), 7u);
  const auto relay = std::find_if(clients.begin(), clients.end(), [](const auto& c) {
    return c.client_addr == "192.0.2.25";
  });
  ASSERT_NE(relay, clients.end());
  EXPECT_EQ(relay->transactions, cached_messages);
  EXPECT_EQ(relay->delivered, cached_messages);
  ASSERT_EQ(relay->pattern_counts.size(), 1u);
  EXPECT_EQ(relay->pattern_counts.front().first->name, "connection-reuse");
  EXPECT_EQ(relay->anomaly.score, 0);  // connection-reuse weighs 0
  EXPECT_NE(cli::render_report_text(*relay).find("192.0.2.25"), std::string::npos);
  std::vector<analysis::Observation> observations;
  for (const auto& c : clients) {
    for (const auto& a : c.sessions) {
      analysis::Observation o{a.fingerprint.id, {}, {}};
      for (const auto* p : a.patterns) o.patterns.push_back(p->name);
      observations.push_back(std::move(o));
    }
  }
  const auto associations = analysis::correlate(observations);
  ASSERT_FALSE(associations.empty());
  EXPECT_EQ(associations.front().pattern, "connection-reuse");
  EXPECT_EQ(associations.front().group_sessions, 1);
}

// 20,000 accepted RCPTs with the null sender, reset and QUIT: no
// verification probe (those check one address) but a client that quit with
// accepted recipients. The `( [RJ])*` of its pattern is what recursed once
// per recipient.
TEST(LongSession, TwentyThousandRecipientsInOneProbe) {
  LongSession s("milter");
  s.event("connect").event("helo", "verifier.example.net").event("mail", "<>");
  for (int i = 0; i < recipients; ++i) {
    s.event("rcpt", "<user" + std::to_string(i) + "@test.example>", R"({"rejected":"0"})");
  }
  s.event("abort").event("close").transaction("<>", "aborted", false).log_close(
      R"({"ehlo":"1","mail":"1","rcpt":"20000","rset":"1","quit":"1"})");
  const SessionFacts f = facts_of(s.build());
  EXPECT_EQ(f.stages, "C H M" + repeated(" R", recipients) + " A Q");
  EXPECT_EQ(f.null_sender, true);
  EXPECT_EQ(f.aborted, 1);
  EXPECT_TRUE(f.notes.empty()) << f.notes.front();
  EXPECT_EQ(names(match_all(builtin(), f)),
            std::vector<std::string>{"abort-after-accepted-recipient"});
}

// The same from the policy server alone (no milter): 20,000 RCPT requests,
// one in ten rejected, then the client drops the connection.
TEST(LongSession, TwentyThousandPolicyRecipientRequests) {
  LongSession s("policy");
  s.event("connect").event("helo", "bulk.example.net").event("mail", "a@bulk.example.net");
  for (int i = 0; i < recipients; ++i) {
    s.event("rcpt", "u" + std::to_string(i) + "@test.example",
            i % 10 == 9 ? R"({"rejected":"1"})" : "{}");
  }
  s.transaction("a@bulk.example.net", "aborted", false)
      .log_close(R"({"ehlo":"1","mail":"1","rcpt":"18000/20000"})");
  const SessionFacts f = facts_of(s.build());
  // The policy server sees no abort; the log's counters end the
  // transaction as a milter would have shown it (A).
  EXPECT_EQ(f.stages, "C H M" + repeated(" R R R R R R R R R J", recipients / 10) + " A L");
  EXPECT_EQ(f.end, "lost");
  EXPECT_EQ(f.notes, std::vector<std::string>{"no milter events: stages come from the policy "
                                              "server"});
  EXPECT_TRUE(match_all(builtin(), f).empty());
  auto harvest = parse_patterns(R"(patterns:
  - name: harvester
    title: Tries many recipients, never sends
    stages: '^C H M( [RJ])+ A [QLZ]$'
    explanation: Address harvesting.
    advice: Block it.
)",
                                "mine.yaml");
  ASSERT_TRUE(harvest) << harvest.message();
  EXPECT_EQ(names(match_all(harvest.value(), f)), std::vector<std::string>{"harvester"});
}

// Many aborted transactions, the same envelope finally sent: the retry is
// found in one pass over the transactions (it was one pass per abort).
TEST(LongSession, ARetryAfterTenThousandAbortsIsFound) {
  LongSession s("milter");
  s.event("connect").event("helo", "ws7.corp.example");
  for (int i = 0; i < cached_messages; ++i) {
    s.event("mail", "<a@corp.example>").event("rcpt", "<b@test.example>", R"({"rejected":"0"})")
        .event("abort").transaction("<a@corp.example>", "aborted", false);
  }
  s.event("mail", "<a@corp.example>").event("rcpt", "<b@test.example>", R"({"rejected":"0"})")
      .event("data").event("eom").event("close")
      .transaction("<a@corp.example>", "delivered", true)
      .log_close(R"({"ehlo":"1","mail":"10001","rcpt":"10001","data":"1","rset":"10000","quit":"1"})");
  const SessionRecord session = s.build();
  SessionFacts f = facts_of(session);
  EXPECT_EQ(f.stages, "C H" + repeated(" M R A", cached_messages) + " M R D E Q");
  EXPECT_EQ(f.retried_same_envelope, true);
  EXPECT_EQ(f.aborted, cached_messages);
  EXPECT_EQ(names(match_all(builtin(), f)), std::vector<std::string>{"intercepting-proxy"});

  SessionRecord other_sender = session;
  other_sender.transactions.back().mail_from = "<c@corp.example>";
  EXPECT_EQ(facts_of(other_sender).retried_same_envelope, false);
}

}  // namespace
}  // namespace smtpscope::analysis
