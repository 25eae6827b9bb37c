#include "session_facts.h"

#include <gtest/gtest.h>

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
    s_.events.push_back(EventRecord{"log", std::move(stage), s_.connect_us, std::nullopt, "",
                                    std::move(attributes)});
    return *this;
  }
  SessionBuilder& transaction(std::string mail_from, std::string outcome, bool data) {
    s_.transactions.push_back(TransactionRecord{static_cast<std::int64_t>(s_.transactions.size() + 1),
                                                std::move(mail_from), 1, 0, data, "", {},
                                                std::move(outcome)});
    return *this;
  }
  SessionRecord build() { return s_; }

 private:
  SessionRecord s_;
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
  EXPECT_TRUE(f.retried_same_envelope);
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

TEST(SessionFacts, RsetsInsideAndOutsideTransactions) {
  EXPECT_EQ(rsets_inside_transactions("C H M R A M R D E Q", 2, true), 1);  // proxy: RSET RSET
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
