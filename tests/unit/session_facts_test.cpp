#include "session_facts.h"

#include <gtest/gtest.h>

#include "patterns.h"

namespace smtpscope::analysis {
namespace {

class SessionBuilder {
 public:
  SessionBuilder() {
    s_.client_addr = "192.0.2.7";
    s_.client_name = "unknown";
    s_.connect_us = 1'000'000;
  }
  SessionBuilder& milter(std::string stage, std::int64_t at_ms, std::string argument = "",
                         std::string attributes = "{}") {
    s_.events.push_back(EventRecord{"milter", std::move(stage), s_.connect_us + at_ms * 1000,
                                    std::nullopt, std::move(argument), std::move(attributes)});
    return *this;
  }
  SessionBuilder& log(std::string stage, std::string attributes) {
    return log_at(std::move(stage), 0, std::move(attributes));
  }
  // A log line `at_s` whole seconds after the connect line.
  SessionBuilder& log_at(std::string stage, std::int64_t at_s, std::string attributes) {
    s_.events.push_back(EventRecord{"log", std::move(stage), s_.connect_us + at_s * 1'000'000,
                                    std::nullopt, "", std::move(attributes)});
    return *this;
  }
  // "connect from", then "disconnect from ... COUNTERS" `at_s` seconds later.
  SessionBuilder& log_session(std::string counters, std::int64_t at_s) {
    log_at("connect", 0, R"({"client_name":"unknown","client_addr":"192.0.2.7"})");
    close_at_s_ = at_s;
    counters_ = std::move(counters);
    return *this;
  }
  SessionBuilder& transaction(std::string mail_from, std::string outcome, bool data) {
    s_.transactions.push_back(TransactionRecord{static_cast<std::int64_t>(s_.transactions.size() + 1),
                                                std::move(mail_from), 1, 0, data, "", {},
                                                std::move(outcome)});
    return *this;
  }
  SessionRecord build() {
    if (close_at_s_) {
      log_at("close", *close_at_s_, counters_);
      s_.close_us = s_.connect_us + *close_at_s_ * 1'000'000;
    }
    return s_;
  }

 private:
  SessionRecord s_;
  std::optional<std::int64_t> close_at_s_;
  std::string counters_;
};

TEST(SessionFacts, StageStringWithGapsAndTheLogsEnd) {
  auto s = SessionBuilder()
               .milter("connect", 0).milter("helo", 1, "ws7.corp.example")
               .milter("mail", 2, "<a@x>").milter("rcpt", 3, "<b@y>", R"({"rejected":"0"})")
               .milter("abort", 10'003).milter("mail", 10'004, "<a@x>")
               .milter("rcpt", 10'005, "<b@y>", R"({"rejected":"0"})")
               .milter("data", 10'006).milter("eom", 10'007).milter("close", 10'008)
               .log("close", R"({"ehlo":"1","mail":"2","rcpt":"2","data":"1","rset":"2","quit":"1"})")
               .transaction("<a@x>", "aborted", false).transaction("<a@x>", "delivered", true)
               .build();
  const SessionFacts f = facts_of(s);
  EXPECT_EQ(f.stages, "C H M R +10s A M R D E Q");
  EXPECT_EQ(f.end, "quit");
  EXPECT_EQ(f.rset, 2);
  EXPECT_EQ(f.retried_same_envelope, true);
  EXPECT_EQ(f.notes, std::vector<std::string>{
                         "1 RSET outside a transaction (counted by the log, invisible to the milter)"});
}

TEST(SessionFacts, AnEmptyHeloIsKnownFromTheLog) {
  auto s = SessionBuilder().milter("connect", 0).milter("close", 1)
               .log("close", R"({"helo":"0/1","quit":"1","commands":"1/2"})").build();
  const SessionFacts f = facts_of(s);
  EXPECT_EQ(f.stages, "C Q");
  EXPECT_TRUE(f.helo_refused);
  EXPECT_EQ(f.quirks, std::vector<HeloQuirk>{HeloQuirk::empty});
}

TEST(SessionFacts, AChangedHeloIsAQuirk) {
  auto s = SessionBuilder().milter("connect", 0).milter("helo", 1, "a.example")
               .milter("helo", 2, "b.example").milter("close", 3).build();
  const SessionFacts f = facts_of(s);
  EXPECT_NE(std::find(f.quirks.begin(), f.quirks.end(), HeloQuirk::changed_in_session),
            f.quirks.end());
  // Without a log the end is unknown, and the facts say so.
  EXPECT_EQ(f.end, "closed");
  EXPECT_EQ(f.stages, "C H H Z");
  ASSERT_EQ(f.notes.size(), 1u);
  EXPECT_EQ(f.notes[0], "no log lines for this session: QUIT, RSET and NOOP are unknown "
                        "(run smtpscope ingest)");
}

TEST(SessionFacts, ADropWithoutQuitIsLost) {
  auto s = SessionBuilder().milter("connect", 0).milter("helo", 1, "x.example")
               .milter("mail", 2, "<a@x>").milter("rcpt", 3, "<b@y>", R"({"rejected":"1"})")
               .milter("abort", 4).milter("close", 5)
               .log("lost", R"({"after":"RCPT"})").log("close", R"({"ehlo":"1","mail":"1","rcpt":"0/1"})")
               .transaction("<a@x>", "aborted", false).build();
  const SessionFacts f = facts_of(s);
  EXPECT_EQ(f.stages, "C H M J A L");
  EXPECT_EQ(f.lost_after, "RCPT");
  EXPECT_EQ(f.end, "lost");
}

// Log-only sessions: the lines as Postfix 3.x writes them (see
// /work/shared/logs/real and tests/fixtures/logs), the stages a milter
// would have produced.

bool has_note(const SessionFacts& f, std::string_view start) {
  return std::any_of(f.notes.begin(), f.notes.end(),
                     [&](const std::string& n) { return n.starts_with(start); });
}

TEST(SessionFactsFromTheLog, TheInterceptingProxyShapeWithItsPause) {
  // connect; QID1: client=; (10 s) QID2: client=; disconnect ... ehlo=1
  // mail=2 rcpt=2 data=1 rset=2 noop=3 quit=1 commands=12
  auto s = SessionBuilder()
               .log_session(R"({"ehlo":"1","mail":"2","rcpt":"2","data":"1","rset":"2",)"
                            R"("noop":"3","quit":"1","commands":"12"})", 11)
               .log_at("queued", 0, R"({"queue_id":"3F1A2B"})")
               .log_at("queued", 10, R"({"queue_id":"4C2D3E"})")
               .build();
  const SessionFacts f = facts_of(s);
  // RSET RSET, ten seconds of silence, then MAIL: the pause before the MAIL
  // the log dates (its "QID: client=" line).
  EXPECT_EQ(f.stages, "C H M R A +10s M R D E Q");
  EXPECT_EQ(f.transactions, 2);
  EXPECT_EQ(f.delivered, 1);
  EXPECT_EQ(f.aborted, 1);
  EXPECT_EQ(f.rset, 2);
  EXPECT_EQ(f.noop, 3);
  // The log names neither sender: unknown, not false.
  EXPECT_FALSE(f.retried_same_envelope.has_value());
  EXPECT_FALSE(f.null_sender.has_value());
  EXPECT_TRUE(has_note(f, "the smtpd log does not name the sender of 2 transactions"));
  EXPECT_TRUE(has_note(f, "the log does not give the order of the 2 transactions"));
  EXPECT_TRUE(has_note(f, "1 RSET outside a transaction"));
}

TEST(SessionFactsFromTheLog, ATempRejectedTransactionNamesItsSender) {
  // NOQUEUE: reject: RCPT from unknown[192.0.2.7]: 450 4.1.8 <a@nowhere.example>:
  // Sender address rejected: Domain not found; from=<a@nowhere.example>
  // to=<b@example.org> proto=ESMTP helo=<mx.nowhere.example>
  auto s = SessionBuilder()
               .log_session(R"({"ehlo":"1","mail":"1","rcpt":"0/1","data":"0/1","rset":"1",)"
                            R"("quit":"1","commands":"4/6"})", 1)
               .log_at("reject", 1, R"({"action":"reject","command":"RCPT","code":"450",)"
                                    R"("from":"a@nowhere.example","to":"b@example.org",)"
                                    R"("proto":"ESMTP","helo":"mx.nowhere.example"})")
               .build();
  const SessionFacts f = facts_of(s);
  // DATA was refused (no valid recipients): a milter never sees it, no D.
  EXPECT_EQ(f.stages, "C H M J A Q");
  EXPECT_EQ(f.temp_rejects, 1);
  EXPECT_EQ(f.perm_rejects, 0);
  EXPECT_EQ(f.null_sender, false);
  EXPECT_EQ(f.senders, std::vector<std::string>{"a@nowhere.example"});
  EXPECT_EQ(f.aborted, 1);
}

TEST(SessionFactsFromTheLog, AVerificationProbeAfterStarttls) {
  auto s = SessionBuilder()
               .log_session(R"({"ehlo":"2","starttls":"1","mail":"1","rcpt":"1","rset":"1",)"
                            R"("quit":"1","commands":"7"})", 0)
               .log_at("queued", 0, R"({"queue_id":"5D6E7F"})")
               .build();
  const SessionFacts f = facts_of(s);
  EXPECT_EQ(f.stages, "C H H M R A Q");
  EXPECT_EQ(f.transactions, 1);
  EXPECT_EQ(f.aborted, 1);
}

TEST(SessionFactsFromTheLog, EndsAndFailures) {
  struct Case {
    std::string counters;
    std::string lost_after;
    std::string stages;
  };
  const std::vector<Case> cases = {
      // postfix/smtps/smtpd: lost connection after AUTH; ehlo=1 auth=0/1 commands=1/2
      {R"({"ehlo":"1","auth":"0/1","commands":"1/2"})", "AUTH", "C H L"},
      // lost connection after CONNECT; commands=0/0
      {R"({"commands":"0/0"})", "CONNECT", "C L"},
      // ehlo=1 mail=1 rcpt=1 data=0/1 quit=1: content refused after 354
      {R"({"ehlo":"1","mail":"1","rcpt":"1","data":"0/1","quit":"1","commands":"4/5"})", "",
       "C H M R D A Q"},
      // a cached connection, RSET before each further MAIL
      {R"({"ehlo":"1","mail":"3","rcpt":"3","data":"3","rset":"3","quit":"1","commands":"14"})",
       "", "C H M R D E M R D E M R D E Q"},
      // the second message cut off: lost connection after DATA (120 bytes)
      {R"({"ehlo":"1","mail":"2","rcpt":"2","data":"1/2","commands":"6/7"})", "DATA",
       "C H M R D E M R D A L"},
      // ehlo=1 mail=0/1 quit=1: MAIL refused (e.g. 530 Must issue a STARTTLS first)
      {R"({"ehlo":"1","mail":"0/1","quit":"1","commands":"2/3"})", "", "C H Q"},
      // unknown=0/1 commands=0/1: one unknown command, then gone
      {R"({"unknown":"0/1","commands":"0/1"})", "", "C U L"},
  };
  for (const Case& c : cases) {
    SessionBuilder b;
    b.log_session(c.counters, 0);
    if (!c.lost_after.empty()) b.log_at("lost", 0, R"({"after":")" + c.lost_after + R"("})");
    const SessionFacts f = facts_of(b.build());
    EXPECT_EQ(f.stages, c.stages) << c.counters;
    EXPECT_EQ(f.lost_after, c.lost_after) << c.counters;
  }
}

TEST(SessionFactsFromTheLog, WithoutCountersTheMiddleIsUnknown) {
  // Postfix 2.x: "disconnect from mx.example[192.0.2.7]" with no counters.
  auto s = SessionBuilder().log_session("{}", 0).build();
  const SessionFacts f = facts_of(s);
  EXPECT_EQ(f.stages, "C Z");
  EXPECT_TRUE(has_note(f, "the log has no command counters"));
  EXPECT_FALSE(has_note(f, "no milter events: stages rebuilt from the log's counters"));
}

// Postfix 2.x with queued mail: each "QID: client=" line is a transaction
// (the real relay log's clients showed 0 transactions in 5,849 sessions).
TEST(SessionFactsFromTheLog, WithoutCountersQueueIdsAreTransactions) {
  SessionFacts f = facts_of(SessionBuilder()
                                .log_session("{}", 5)
                                .log_at("queued", 1, "{}")
                                .log_at("queued", 4, "{}")
                                .build());
  EXPECT_EQ(f.stages, "C M R D E +3s M R D E Z");
  EXPECT_EQ(f.transactions, 2);
  EXPECT_EQ(f.delivered, 2);
  EXPECT_EQ(f.aborted, 0);
  EXPECT_EQ(f.null_sender, std::nullopt);
  EXPECT_TRUE(has_note(f, "the log has no command counters for this session (Postfix before "
                          "3.0): 2 transactions counted from its queue ids"));
  EXPECT_TRUE(has_note(f, "the log's disconnect line has no counters"));
  EXPECT_FALSE(has_note(f, "the log has no disconnect line"));
  // Lost in DATA: the last one was not queued after all.
  f = facts_of(SessionBuilder()
                   .log_session("{}", 2)
                   .log_at("queued", 1, "{}")
                   .log_at("lost", 2, R"({"after":"DATA"})")
                   .build());
  EXPECT_EQ(f.stages, "C M R D A L");
  EXPECT_EQ((std::pair{f.delivered, f.aborted}), (std::pair{0, 1}));
  // No queue id, no counters: nothing to count.
  f = facts_of(SessionBuilder().log_session("{}", 0).build());
  EXPECT_EQ(f.transactions, 0);
}

// postscreen quotes what a pregreeting bot sent ("PREGREET 11 after 0.1
// from [a]:p: EHLO ylmf-pc"): its HELO, whose quirks are the bot's.
TEST(SessionFactsFromTheLog, APregreetsHeloIsTheSessions) {
  auto s = SessionBuilder()
               .log_session("{}", 1)
               .log_at("screen", 0, R"({"verdict":"PREGREET","helo":"ylmf-pc"})")
               .build();
  const SessionFacts f = facts_of(s);
  EXPECT_EQ(f.helos, std::vector<std::string>{"ylmf-pc"});
  EXPECT_TRUE(f.pregreet);
  EXPECT_NE(std::find(f.quirks.begin(), f.quirks.end(), HeloQuirk::non_fqdn), f.quirks.end());
}

// The close event carries more than counters (the syslog host, since
// central-syslog ingest): only N or OK/TRIED values are counters, so a
// Postfix 2.x session with a host is still one without counters (it was
// read as having "host" and no MAIL, and named scanner on a real relay log).
TEST(SessionFactsFromTheLog, OnlyNumbersAreCounters) {
  SessionFacts f = facts_of(SessionBuilder().log_session(R"({"host":"gds39d"})", 0).build());
  EXPECT_TRUE(f.log_counters.empty());
  EXPECT_EQ(f.stages, "C Z");
  f = facts_of(SessionBuilder()
                   .log_session(R"({"host":"mx1","ehlo":"1","mail":"0/1","quit":"1","x":"1/"})", 1)
                   .build());
  EXPECT_EQ(f.log_counters, (std::map<std::string, std::string>{
                                {"ehlo", "1"}, {"mail", "0/1"}, {"quit", "1"}}));
}

// The policy server sees MAIL, RCPT, DATA and END-OF-MESSAGE but no abort:
// with the log, a transaction that reached no end of message is aborted.
TEST(SessionFacts, PolicyTransactionsAreEndedFromTheLog) {
  SessionRecord s;
  s.client_addr = "192.0.2.7";
  auto policy = [&s](std::string stage) {
    s.events.push_back(EventRecord{"policy", std::move(stage), 0, std::nullopt, "", "{}"});
  };
  for (const char* stage : {"connect", "helo", "mail", "rcpt", "mail", "rcpt", "data", "eom"}) {
    policy(stage);
  }
  s.events.push_back(EventRecord{"log", "close", 0, std::nullopt, "",
                                 R"({"ehlo":"1","mail":"2","rcpt":"2","data":"1","rset":"1",)"
                                 R"("quit":"1"})"});
  EXPECT_EQ(facts_of(s).stages, "C H M R A M R D E Q");
  // Not asked at END-OF-MESSAGE: the log's data=1 says the message was queued.
  s.events.erase(s.events.begin() + 7);
  EXPECT_EQ(facts_of(s).stages, "C H M R A M R D E Q");
  // Without the log nothing is added: the end is unknown.
  s.events.pop_back();
  EXPECT_EQ(facts_of(s).stages, "C H M R M R D Z");
}

// The log's counters tell HELO from EHLO (found through Postfix: the
// old client that greets with HELO had the quirk from all three sensors,
// not from the log alone).
TEST(SessionFactsFromTheLog, HeloNotEhloFromTheCounters) {
  auto has_helo_not_ehlo = [](const std::string& counters) {
    const SessionFacts f = facts_of(SessionBuilder().log_session(counters, 1).build());
    return std::find(f.quirks.begin(), f.quirks.end(), HeloQuirk::helo_not_ehlo) != f.quirks.end();
  };
  EXPECT_TRUE(has_helo_not_ehlo(R"({"helo":"1","mail":"1","rcpt":"1","data":"1","quit":"1"})"));
  EXPECT_FALSE(has_helo_not_ehlo(R"({"ehlo":"1","mail":"1","rcpt":"1","data":"1","quit":"1"})"));
  EXPECT_FALSE(has_helo_not_ehlo(R"({"helo":"1","ehlo":"0/1","quit":"1"})"));
  EXPECT_FALSE(has_helo_not_ehlo(R"({"helo":"0/1","quit":"1"})"));  // refused: an empty HELO
}

// A policy-server session with the log's lines: policy(stage, argument,
// attributes) then log(stage, attributes), all at time 0.
class PolicySession {
 public:
  PolicySession& policy(std::string stage, std::string argument = "",
                        std::string attributes = "{}") {
    s_.events.push_back(EventRecord{"policy", std::move(stage), 0, std::nullopt,
                                    std::move(argument), std::move(attributes)});
    return *this;
  }
  PolicySession& log(std::string stage, std::string attributes) {
    s_.events.push_back(EventRecord{"log", std::move(stage), 0, std::nullopt, "",
                                    std::move(attributes)});
    return *this;
  }
  SessionRecord build() const { return s_; }

 private:
  SessionRecord s_;
};

// The policy server is asked before Postfix's recipient checks, so it saw
// as accepted the RCPT the log shows rejected (found through Postfix: the
// rejected-recipient scenario read "C H M R A Q" and was named
// verification-probe from policy + log).
TEST(SessionFacts, APolicyRcptTheLogRejectedIsRejected) {
  const SessionRecord s =
      PolicySession()
          .policy("connect").policy("helo", "rejected.example")
          .policy("mail", "a@rejected.example", R"({"sender":"a@rejected.example"})")
          .policy("rcpt", "ok@test.example").policy("rcpt", "reject@test.example")
          .log("reject", R"({"action":"reject","command":"RCPT","code":"554",)"
                         R"("from":"a@rejected.example","to":"reject@test.example"})")
          .log("close", R"({"ehlo":"1","mail":"1","rcpt":"1/2","rset":"1","quit":"1"})")
          .build();
  EXPECT_EQ(facts_of(s).stages, "C H M R J A Q");
  // A warn line is no refusal.
  SessionRecord warned = s;
  warned.events[5].attributes_json = R"({"action":"warn","command":"RCPT","to":"reject@test.example"})";
  EXPECT_EQ(facts_of(warned).stages, "C H M R R A Q");
  // The same recipient twice, refused once (a 4xx, then accepted on the
  // retry): the first is the refused one.
  const SessionRecord twice =
      PolicySession()
          .policy("connect").policy("helo", "rejected.example")
          .policy("mail", "a@x", R"({"sender":"a@x"})")
          .policy("rcpt", "b@y").policy("rcpt", "b@y")
          .log("reject", R"({"action":"reject","command":"RCPT","code":"450","to":"b@y"})")
          .log("close", R"({"ehlo":"1","mail":"1","rcpt":"1/2","rset":"1","quit":"1"})")
          .build();
  EXPECT_EQ(facts_of(twice).stages, "C H M J R A Q");
}

// The store leaves the policy server's transactions open with no recipient
// counted; once the log ends them, their facts come from the stages and the
// senders of the MAIL requests (the intercepting proxy was not named from
// policy + log: "same envelope retried" read false).
TEST(SessionFacts, PolicyTransactionsAreCountedFromTheirStages) {
  PolicySession proxy;
  proxy.policy("connect").policy("helo", "ws7.corp.example");
  for (int i = 0; i < 2; ++i) {
    proxy.policy("mail", "clerk@corp.example", R"({"sender":"clerk@corp.example"})")
        .policy("rcpt", "boss@test.example");
  }
  proxy.policy("data").policy("eom").log(
      "close", R"({"ehlo":"1","mail":"2","rcpt":"2","data":"1","rset":"2","quit":"1"})");
  SessionRecord s = proxy.build();
  s.transactions = {TransactionRecord{1, "<clerk@corp.example>", 0, 0, false, "", {}, "open"},
                    TransactionRecord{2, "<clerk@corp.example>", 0, 0, false, "", {}, "open"}};
  SessionFacts f = facts_of(s);
  EXPECT_EQ(f.stages, "C H M R A M R D E Q");
  EXPECT_EQ(f.transactions, 2);
  EXPECT_EQ(f.aborted, 1);
  EXPECT_EQ(f.delivered, 1);
  EXPECT_EQ(f.retried_same_envelope, true);
  EXPECT_EQ(f.null_sender, false);
  EXPECT_EQ(f.senders, (std::vector<std::string>{"clerk@corp.example", "clerk@corp.example"}));

  const SessionRecord probe =
      PolicySession()
          .policy("connect").policy("helo", "verifier.example.net")
          .policy("mail", "", R"({"sender":""})").policy("rcpt", "someone@test.example")
          .log("close", R"({"ehlo":"1","mail":"1","rcpt":"1","rset":"1","quit":"1"})")
          .build();
  f = facts_of(probe);
  EXPECT_EQ(f.stages, "C H M R A Q");
  EXPECT_EQ(f.null_sender, true);
  EXPECT_EQ(f.aborted, 1);
}

TEST(SessionFacts, RsetsInsideAndOutsideTransactions) {
  EXPECT_EQ(rsets_inside_transactions("C H M R A M R D E Q", 2, true), 1);  // proxy: RSET RSET
  EXPECT_EQ(rsets_inside_transactions("C H M R A +10s M R D E Q", 2, true), 1);  // a pause
  EXPECT_EQ(rsets_inside_transactions("C H M R A Q", 1, true), 1);  // probe: RSET, QUIT
  EXPECT_EQ(rsets_inside_transactions("C H M R A Q", 0, true), 0);  // QUIT with it open
  EXPECT_EQ(rsets_inside_transactions("C H M R A L", 0, false), 0);  // lost
  EXPECT_EQ(rsets_inside_transactions("C H M R D E M R D E L", 1, false), 0);  // reuse
  EXPECT_EQ(rsets_inside_transactions("C H M R A H M R A Q", 1, true), 1);  // new EHLO, then RSET
}

TEST(SessionFacts, CounterForms) {
  const std::map<std::string, std::string> counters = {{"rcpt", "0/2"}, {"mail", "1"}};
  EXPECT_EQ(succeeded(counters, "rcpt"), 0);
  EXPECT_EQ(attempted(counters, "rcpt"), 2);
  EXPECT_EQ(succeeded(counters, "mail"), 1);
  EXPECT_EQ(attempted(counters, "mail"), 1);
  EXPECT_FALSE(succeeded(counters, "rset"));
}

}  // namespace
}  // namespace smtpscope::analysis

namespace smtpscope::analysis {
namespace {

// Whatever the counters say (damaged lines, huge or odd numbers), the
// rebuilt session is bounded and consistent: one M per accepted MAIL (at
// most 10,000), a D only after an R, every transaction ended by E or A.
TEST(SessionFactsFromTheLog, AnyCountersGiveABoundedConsistentShape) {
  const std::vector<std::string> values = {"0", "1", "2", "3", "0/1", "1/2", "2/5", "99999999",
                                           "5/3", "-1", "x", "", "1/", "/1", "4294967296"};
  const std::vector<std::string> names = {"ehlo", "mail", "rcpt", "data", "bdat", "rset", "quit",
                                          "unknown"};
  std::uint32_t state = 7;
  auto next = [&state] { return state = state * 1103515245u + 12345u; };
  for (int round = 0; round < 2000; ++round) {
    LogView log;
    for (const auto& name : names) {
      if (next() % 3 != 0) log.counters[name] = values[(next() >> 8) % values.size()];
    }
    if (log.counters.empty()) log.counters["commands"] = "0/0";
    for (int q = static_cast<int>((next() >> 8) % 4); q > 0; --q) log.queued_us.push_back(q * 1000);
    log.end_state = next() % 2 ? "DATA" : "";
    const LogStages out = log_stages(log, 0, 10'000'000);
    ASSERT_LE(out.tokens.size(), 200'000u);
    const int mails = std::min(succeeded(log.counters, "mail").value_or(0), 10000);
    EXPECT_EQ(out.transactions.size(), static_cast<std::size_t>(std::max(mails, 0)));
    std::string letters;
    for (const auto& t : out.tokens) {
      letters += t.letter;
      EXPECT_GE(t.time_us, 0);
      EXPECT_LE(t.time_us, 10'000'000);
    }
    bool open = false, accepted = false;
    for (char c : letters) {
      if (c == 'M') {
        EXPECT_FALSE(open) << letters;
        open = true;
        accepted = false;
      }
      if (c == 'R') accepted = true;
      if (c == 'D') {
        EXPECT_TRUE(open && accepted) << letters;
      }
      if (c == 'E' || c == 'A') {
        EXPECT_TRUE(open) << letters;
        open = false;
      }
    }
    EXPECT_FALSE(open) << letters;
  }
}

// The log's facts beyond the commands (issue 14 items 2-3): failed SASL
// AUTH, qmgr's sender, cleanup's content rejects, failed TLS, the PTR check.

std::vector<std::string> pattern_names(const SessionFacts& f) {
  static const PatternSet set = parse_patterns(builtin_patterns_yaml(), "builtin").value();
  std::vector<std::string> out;
  for (const Pattern* p : match_all(set, f)) out.push_back(p->name);
  return out;
}

constexpr const char* sasl_failure =
    R"({"action":"auth-failed","command":"AUTH","sasl_method":"LOGIN","outcome":"failed",)"
    R"("sasl_username":"admin"})";

// monozoide's sample: only "SASL LOGIN authentication failed" lines, no
// connect, no disconnect. The failures are counted as auth=0/N, so the
// session is named auth guessing as one with counters would be.
TEST(SessionFactsFromTheLog, SaslFailuresWithoutCountersAreAuthGuessing) {
  SessionRecord s = SessionBuilder().log_at("reject", 0, sasl_failure)
                        .log_at("reject", 3, sasl_failure).build();
  s.partial = true;
  SessionFacts f = facts_of(s);
  EXPECT_EQ(f.auth_failures, 2);
  EXPECT_TRUE(f.counters_derived);
  EXPECT_EQ(f.log_counters, (std::map<std::string, std::string>{{"auth", "0/2"}}));
  EXPECT_EQ(f.stages, "C +3s Z");
  EXPECT_EQ(f.temp_rejects + f.perm_rejects, 0);  // not a reply to a command
  EXPECT_TRUE(has_note(f, "no disconnect counters: auth=0/2 counted from the log's SASL failure"));
  EXPECT_EQ(pattern_names(f), std::vector<std::string>{"auth-guessing"});
  // A client that then mailed (a queue id) is not "never mails".
  f = facts_of(SessionBuilder().log_session("{}", 5).log_at("reject", 1, sasl_failure)
                   .log_at("queued", 2, "{}").build());
  EXPECT_EQ(f.log_counters, (std::map<std::string, std::string>{{"auth", "0/1"}, {"mail", "1"}}));
  EXPECT_EQ(pattern_names(f), std::vector<std::string>{});
  // With the disconnect counters, they are the word: nothing derived.
  f = facts_of(SessionBuilder().log_session(R"({"ehlo":"1","auth":"0/1","commands":"1/2"})", 1)
                   .log_at("reject", 1, sasl_failure).build());
  EXPECT_FALSE(f.counters_derived);
  EXPECT_EQ(f.auth_failures, 1);
  EXPECT_EQ(f.log_counters.at("auth"), "0/1");
}

// qmgr's "QID: from=<S>, size=N" is joined to the queued event: the
// delivered transaction's sender is known, null or not.
TEST(SessionFactsFromTheLog, QmgrsSenderSettlesTheNullSender) {
  const std::string mta = R"({"ehlo":"2","starttls":"1","mail":"1","rcpt":"1","data":"1","quit":"1"})";
  SessionFacts f = facts_of(SessionBuilder().log_session(mta, 3)
                                .log_at("queued", 2, R"({"queue_id":"7092C3EB74","from":"a@x.example"})")
                                .build());
  EXPECT_EQ(f.null_sender, false);
  EXPECT_EQ(f.senders, std::vector<std::string>{"a@x.example"});
  EXPECT_FALSE(has_note(f, "the smtpd log does not name the sender"));
  f = facts_of(SessionBuilder().log_session(mta, 3)
                   .log_at("queued", 2, R"({"queue_id":"7092C3EB74","from":""})").build());
  EXPECT_EQ(f.null_sender, true);
  // Not joined (qmgr logged after the batch was written): unknown, as before.
  f = facts_of(SessionBuilder().log_session(mta, 3).log_at("queued", 2, R"({"queue_id":"Q1"})")
                   .build());
  EXPECT_EQ(f.null_sender, std::nullopt);
  // Postfix 2.x: the transactions counted from queue ids get qmgr's senders.
  f = facts_of(SessionBuilder().log_session("{}", 5)
                   .log_at("queued", 1, R"({"queue_id":"Q1","from":"b@y.example"})")
                   .log_at("queued", 4, R"({"queue_id":"Q2","from":"c@y.example"})").build());
  EXPECT_EQ(f.null_sender, false);
  EXPECT_EQ(f.senders, (std::vector<std::string>{"b@y.example", "c@y.example"}));
  EXPECT_TRUE(has_note(f, "the log has no command counters for this session (Postfix before "
                          "3.0): 2 transactions counted from its queue ids"));
  EXPECT_NE(f.notes.front().find("their senders are qmgr's"), std::string::npos);
  f = facts_of(SessionBuilder().log_session("{}", 5)
                   .log_at("queued", 1, R"({"queue_id":"Q1","from":"b@y.example"})")
                   .log_at("queued", 4, R"({"queue_id":"Q2"})").build());
  EXPECT_EQ(f.null_sender, std::nullopt);
  EXPECT_NE(f.notes.front().find("1 of their senders (qmgr logged 1)"), std::string::npos);
}

// cleanup's "QID: reject: header Received: ... from C[A]; from=<S> ...:
// 5.7.1 TEXT", joined by queue id: a content reject, counted as such (and
// as a permanent reject), naming the sender of the refused message.
TEST(SessionFactsFromTheLog, ContentRejectsAreCountedAndNameTheSender) {
  constexpr const char* refused =
      R"({"action":"reject","command":"header","queue_id":"7A6503EC2B","dsn":"5.7.1",)"
      R"("reply":"5.7.1 Looks like spam to me.","from":"deepakc@eteaminc.com","helo":"mail1.example"})";
  SessionFacts f = facts_of(
      SessionBuilder()
          .log_session(R"({"ehlo":"1","mail":"1","rcpt":"1","data":"0/1","quit":"1","commands":"4/5"})", 44)
          .log_at("queued", 44, R"({"queue_id":"7A6503EC2B"})")
          .log_at("reject", 44, refused)
          .build());
  EXPECT_EQ(f.content_rejects, 1);
  EXPECT_EQ(f.perm_rejects, 1);
  EXPECT_EQ(f.stages, "C H +44s M R D A Q");
  EXPECT_EQ((std::pair{f.delivered, f.aborted}), (std::pair{0, 1}));
  EXPECT_EQ(f.senders, std::vector<std::string>{"deepakc@eteaminc.com"});
  EXPECT_EQ(f.null_sender, false);
  EXPECT_TRUE(has_note(f, "1 message refused for its content (cleanup or a milter)"));
  EXPECT_EQ(pattern_names(f), std::vector<std::string>{"content-rejected"});
  // Two messages, the second refused: the refused one is the failed
  // transaction (with its sender), the other delivered with qmgr's.
  f = facts_of(
      SessionBuilder()
          .log_session(R"({"ehlo":"1","mail":"2","rcpt":"2","data":"1/2","quit":"1"})", 9)
          .log_at("queued", 2, R"({"queue_id":"Q1","from":"ok@x.example"})")
          .log_at("queued", 8, R"({"queue_id":"7A6503EC2B"})")
          .log_at("reject", 8, refused)
          .build());
  EXPECT_EQ(f.senders, (std::vector<std::string>{"deepakc@eteaminc.com", "ok@x.example"}));
  EXPECT_EQ((std::pair{f.delivered, f.aborted}), (std::pair{1, 1}));
  // Postfix 2.x: the refused queue id is not a delivered transaction.
  f = facts_of(SessionBuilder().log_session("{}", 5)
                   .log_at("queued", 1, R"({"queue_id":"7A6503EC2B"})")
                   .log_at("reject", 1, refused).build());
  EXPECT_EQ(f.stages, "C M R D A +4s Z");
  EXPECT_EQ((std::pair{f.delivered, f.aborted}), (std::pair{0, 1}));
  EXPECT_EQ(f.senders, std::vector<std::string>{"deepakc@eteaminc.com"});
  // A discard is not a reject: the client was told the message was taken.
  f = facts_of(SessionBuilder().log_session("{}", 5)
                   .log_at("queued", 1, R"({"queue_id":"Q9"})")
                   .log_at("reject", 1, R"({"action":"discard","command":"header","queue_id":"Q9",)"
                                        R"("dsn":"2.0.0"})")
                   .build());
  EXPECT_EQ(f.content_rejects, 0);
  EXPECT_EQ(f.delivered, 1);
}

// "SSL_accept error from C[A]: REASON" and "lost connection after STARTTLS".
TEST(SessionFactsFromTheLog, FailedTlsHandshakesAreAFact) {
  SessionRecord s = SessionBuilder().log_session(R"({"commands":"0/0"})", 0)
                        .log_at("lost", 0, R"({"after":"CONNECT"})").build();
  s.events.insert(s.events.begin() + 1, EventRecord{"log", "tls", s.connect_us, std::nullopt,
                                                    "Connection reset by peer",
                                                    R"({"outcome":"failed"})"});
  SessionFacts f = facts_of(s);
  EXPECT_TRUE(f.tls_failed);
  EXPECT_EQ(f.tls_failure, "Connection reset by peer");
  EXPECT_TRUE(has_note(f, "TLS handshake failed: Connection reset by peer"));
  EXPECT_EQ(f.stages, "C L");
  EXPECT_EQ(pattern_names(f), std::vector<std::string>{"scanner"});
  // After STARTTLS: "220 Ready", then no TLS session.
  f = facts_of(SessionBuilder().log_session(R"({"ehlo":"1","starttls":"1","commands":"2"})", 1)
                   .log_at("lost", 1, R"({"after":"STARTTLS","tls":"failed"})").build());
  EXPECT_TRUE(f.tls_failed);
  EXPECT_TRUE(has_note(f, "TLS handshake failed: lost connection after STARTTLS"));
  // A completed handshake is not a failure.
  f = facts_of(SessionBuilder().log_session(R"({"ehlo":"2","starttls":"1","quit":"1"})", 1)
                   .log_at("tls", 0, R"({"trust":"Anonymous","tls_version":"TLSv1.3"})").build());
  EXPECT_FALSE(f.tls_failed);
}

// smtpd's PTR check on the connect: the client's name quirks.
TEST(SessionFactsFromTheLog, ThePtrCheckIsANameQuirk) {
  auto with_check = [](const std::string& check) {
    SessionRecord s = SessionBuilder().log_session(R"({"ehlo":"1","quit":"1"})", 1).build();
    s.events.front().attributes_json =
        R"({"client_name":"unknown","client_addr":"192.0.2.7","client_ptr":"server1.hostname.com",)"
        R"("ptr_check":")" + check + R"("})";
    return facts_of(s).quirks;
  };
  EXPECT_EQ(with_check("mismatch"), std::vector<HeloQuirk>{HeloQuirk::ptr_mismatch});
  EXPECT_EQ(with_check("unresolved"), std::vector<HeloQuirk>{HeloQuirk::unresolved_name});
  EXPECT_EQ(with_check("other"), std::vector<HeloQuirk>{});
}

}  // namespace
}  // namespace smtpscope::analysis
