#include "event_writer.h"

#include <gtest/gtest.h>

#include "test_support.h"

namespace smtpscope {
namespace {

class EventWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = testing::migrated_memory_database();
    ASSERT_NE(db_, nullptr);
    auto writer = EventWriter::create(*db_);
    ASSERT_TRUE(writer) << writer.message();
    writer_ = std::move(writer).value();
  }

  void apply(Stage stage, std::uint32_t transaction, std::string argument = "",
             std::vector<Attribute> attributes = {}, std::string stream = "milter:1:1",
             Source source = Source::milter) {
    Event e;
    e.source = source;
    e.stage = stage;
    e.time_us = ++now_;
    e.stream = std::move(stream);
    e.transaction = transaction;
    e.argument = std::move(argument);
    e.attributes = std::move(attributes);
    Status applied = writer_->apply(e);
    ASSERT_TRUE(applied) << applied.message();
  }

  std::vector<std::string> rows(const std::string& sql) {
    auto query = db_->prepare(sql);
    EXPECT_TRUE(query) << query.message();
    std::vector<std::string> out;
    while (query.value().step().value()) out.push_back(query.value().column_text(0));
    return out;
  }

  std::unique_ptr<sqlite::Database> db_;
  std::unique_ptr<EventWriter> writer_;
  std::int64_t now_ = 1000;
};

TEST_F(EventWriterTest, ResetThenRetryMakesTwoTransactions) {
  apply(Stage::connect, 0, "[192.0.2.7]",
        {{"client_addr", "192.0.2.7"}, {"client_port", "40001"}, {"server_port", "25"}});
  apply(Stage::helo, 0, "ws7.corp.example");
  apply(Stage::mail, 1, "<clerk@corp.example>");
  apply(Stage::rcpt, 1, "<boss@corp.example>", {{"rejected", "0"}});
  apply(Stage::abort, 1);
  apply(Stage::mail, 2, "<clerk@corp.example>");
  apply(Stage::rcpt, 2, "<boss@corp.example>", {{"rejected", "0"}});
  apply(Stage::data, 2, "", {{"queue_id", "4F3A1"}});
  apply(Stage::eom, 2, "", {{"queue_id", "4F3A1"}, {"body_bytes", "120"}});
  apply(Stage::close, 0);

  EXPECT_EQ(rows("SELECT client_addr || ':' || client_port || ' ' || helo || ' ' || transactions"
                 " || ' ' || (close_us IS NOT NULL) FROM sessions"),
            std::vector<std::string>{"192.0.2.7:40001 ws7.corp.example 2 1"});
  EXPECT_EQ(rows("SELECT seq || ' ' || outcome || ' ' || rcpt_accepted || ' ' ||"
                 " coalesce(queue_id, '-') || ' ' || coalesce(body_bytes, '-') ||"
                 " ' ' || (data_us IS NOT NULL) FROM transactions ORDER BY seq"),
            (std::vector<std::string>{"1 aborted 1 - - 0", "2 delivered 1 4F3A1 120 1"}));
  // Every event row points at its transaction, including the one that ended it.
  EXPECT_EQ(rows("SELECT e.stage || ':' || coalesce(t.seq, 0) FROM events e LEFT JOIN"
                 " transactions t ON t.id = e.transaction_id ORDER BY e.id"),
            (std::vector<std::string>{"connect:0", "helo:0", "mail:1", "rcpt:1", "abort:1",
                                      "mail:2", "rcpt:2", "data:2", "eom:2", "close:0"}));
  EXPECT_EQ(writer_->open_streams(), 0u);
}

TEST_F(EventWriterTest, RejectedRecipientsAreCountedApart) {
  apply(Stage::connect, 0);
  apply(Stage::mail, 1, "<a@x.example>");
  apply(Stage::rcpt, 1, "<no@y.example>", {{"rejected", "1"}});
  apply(Stage::rcpt, 1, "<yes@y.example>", {{"rejected", "0"}});
  apply(Stage::close, 0);
  EXPECT_EQ(rows("SELECT rcpt_accepted || '/' || rcpt_rejected || ' ' || outcome FROM transactions"),
            std::vector<std::string>{"1/1 aborted"});
}

TEST_F(EventWriterTest, EventsWithoutConnectGoToAPartialSession) {
  apply(Stage::helo, 0, "late.example", {}, "milter:1:9");
  apply(Stage::close, 0, "", {}, "milter:1:9");
  EXPECT_EQ(rows("SELECT partial || ' ' || helo FROM sessions"),
            std::vector<std::string>{"1 late.example"});
}

TEST_F(EventWriterTest, InterleavedStreamsStayApart) {
  apply(Stage::connect, 0, "", {{"client_addr", "192.0.2.1"}}, "milter:1:1");
  apply(Stage::connect, 0, "", {{"client_addr", "192.0.2.2"}}, "milter:1:2");
  apply(Stage::mail, 1, "<one@x>", {}, "milter:1:1");
  apply(Stage::mail, 1, "<two@x>", {}, "milter:1:2");
  EXPECT_EQ(rows("SELECT s.client_addr || ' ' || t.mail_from FROM transactions t JOIN sessions s"
                 " ON s.id = t.session_id ORDER BY t.id"),
            (std::vector<std::string>{"192.0.2.1 <one@x>", "192.0.2.2 <two@x>"}));
}

TEST_F(EventWriterTest, HostileTextIsStoredVerbatim) {
  const std::string hostile = std::string("'); DROP TABLE sessions; --\x1b[2J\xff", 33);
  apply(Stage::connect, 0);
  apply(Stage::helo, 0, hostile);
  EXPECT_EQ(rows("SELECT helo FROM sessions"), std::vector<std::string>{hostile});
}

// Policy requests join the session of their client address and port,
// whichever sensor's batch is committed first.
const std::vector<Attribute> client7 = {{"client_addr", "192.0.2.7"}, {"client_port", "40001"}};
const std::vector<Attribute> policy7 = {{"client_address", "192.0.2.7"},
                                        {"client_port", "40001"},
                                        {"protocol_name", "ESMTP"},
                                        {"sender", "clerk@corp.example"}};

TEST_F(EventWriterTest, PolicyJoinsTheMiltersSession) {
  apply(Stage::connect, 0, "", client7);
  apply(Stage::rcpt, 1, "boss@corp.example", policy7, "policy:9:1", Source::policy);
  apply(Stage::mail, 1, "<clerk@corp.example>");
  EXPECT_EQ(rows("SELECT count(*) || ' ' || sources || ' ' || join_method || ' ' || protocol"
                 " FROM sessions"),
            std::vector<std::string>{"1 milter policy client address+port+time ESMTP"});
  EXPECT_EQ(rows("SELECT seq || ' ' || mail_from FROM transactions"),
            std::vector<std::string>{"1 <clerk@corp.example>"});
}

TEST_F(EventWriterTest, TheMilterAdoptsASessionThePolicyOpenedFirst) {
  now_ = 5000;  // the policy's batch was committed first, with a later event
  apply(Stage::rcpt, 1, "boss@corp.example", policy7, "policy:9:1", Source::policy);
  now_ = 1000;
  apply(Stage::connect, 0, "", client7);
  apply(Stage::mail, 1, "<clerk@corp.example>");
  apply(Stage::close, 0);
  EXPECT_EQ(rows("SELECT count(*) || ' ' || sources || ' ' || join_method || ' ' || partial ||"
                 " ' ' || connect_us FROM sessions"),
            std::vector<std::string>{"1 policy milter client address+port+time 0 1001"});
  EXPECT_EQ(rows("SELECT count(*) FROM transactions"), std::vector<std::string>{"1"});
}

TEST_F(EventWriterTest, APolicyConnectionMovesToTheNextSession) {
  apply(Stage::connect, 0, "", client7, "milter:1:1");
  apply(Stage::close, 0, "", {}, "milter:1:1");
  apply(Stage::connect, 0, "", {{"client_addr", "192.0.2.8"}, {"client_port", "5"}}, "milter:1:2");
  apply(Stage::rcpt, 0, "", policy7, "policy:9:1", Source::policy);
  apply(Stage::rcpt, 0, "", {{"client_address", "192.0.2.8"}, {"client_port", "5"}},
        "policy:9:1", Source::policy);
  EXPECT_EQ(rows("SELECT s.client_addr || ' ' || count(e.id) FROM sessions s JOIN events e"
                 " ON e.session_id = s.id WHERE e.source = 'policy' GROUP BY s.id ORDER BY s.id"),
            (std::vector<std::string>{"192.0.2.7 1", "192.0.2.8 1"}));
}

TEST_F(EventWriterTest, ThePolicyGreetingBeforeHeloIsNotTheVerb) {
  apply(Stage::connect, 0, "", client7);
  apply(Stage::connect, 0, "", {{"client_address", "192.0.2.7"}, {"client_port", "40001"},
                                {"protocol_name", "SMTP"}}, "policy:9:1", Source::policy);
  EXPECT_EQ(rows("SELECT coalesce(protocol, 'unknown') FROM sessions"),
            std::vector<std::string>{"unknown"});
  // At the EHLO check Postfix still says SMTP; protocol_state names the verb.
  apply(Stage::helo, 0, "", {{"client_address", "192.0.2.7"}, {"client_port", "40001"},
                             {"protocol_name", "SMTP"}, {"protocol_state", "EHLO"}},
        "policy:9:1", Source::policy);
  EXPECT_EQ(rows("SELECT protocol FROM sessions"), std::vector<std::string>{"ESMTP"});
}

}  // namespace
}  // namespace smtpscope
