#include "event_writer.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "json_text.h"
#include "session_reader.h"

#include "test_support.h"

#include <algorithm>

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


// ---- attributes stored once (schema 9) ----

// What a lab session of all three sensors carries (recorded from a private
// Postfix with smtpscope-milter, smtpscope-policyd and the log ingested),
// for a client port, smtpd pid and queue id.
std::vector<Event> lab_session(int n) {
  const std::string port = std::to_string(40000 + n);
  const std::string pid = std::to_string(26000 + n);
  const std::string queue_id = "DDEFBA7" + std::to_string(1000 + n);
  const std::string instance = "66a7.6b0d02d5.db63d." + std::to_string(n);
  const std::string milter = "milter:1:" + std::to_string(n);
  const std::string policy = "policy:1:1";
  const std::string log = "log:mx:" + pid;
  auto event = [](Source source, Stage stage, std::string stream, std::uint32_t transaction,
                  std::string argument, std::vector<Attribute> attributes) {
    Event e;
    e.source = source;
    e.stage = stage;
    e.stream = std::move(stream);
    e.transaction = transaction;
    e.argument = std::move(argument);
    e.attributes = std::move(attributes);
    return e;
  };
  const std::vector<Attribute> client = {
      {"client_address", "127.0.0.1"}, {"client_name", "localhost"}, {"client_port", port},
      {"reverse_client_name", "localhost"}, {"server_address", "127.0.0.1"},
      {"server_port", "40855"}, {"encryption_keysize", "0"}};
  auto request = [&](std::string state, std::vector<Attribute> more) {
    std::vector<Attribute> all = {{"protocol_state", std::move(state)},
                                  {"protocol_name", "SMTP"}};
    all.insert(all.end(), client.begin(), client.end());
    all.insert(all.end(), more.begin(), more.end());
    return all;
  };
  const std::vector<Attribute> envelope = {{"helo_name", "vm"},
                                           {"sender", "bench@sender.example"}};
  std::vector<Attribute> rcpt = envelope;
  rcpt.insert(rcpt.end(), {{"recipient", "rcpt@test.example"}, {"instance", instance},
                           {"smtpd_pid", pid}});
  std::vector<Attribute> data = rcpt;
  data.insert(data.end(), {{"recipient_count", "1"}, {"queue_id", queue_id}});
  const std::vector<Attribute> log_client = {{"client_name", "localhost"},
                                             {"client_addr", "127.0.0.1"},
                                             {"client_port", port},
                                             {"program", "postfix/smtpd"},
                                             {"pid", pid},
                                             {"host", "mx"},
                                             {"clock", "second"}};
  std::vector<Attribute> log_close = log_client;
  log_close.insert(log_close.end(), {{"helo", "1"}, {"mail", "1"}, {"rcpt", "1"}, {"data", "1"},
                                     {"quit", "1"}, {"commands", "5"}});
  return {
      event(Source::policy, Stage::connect, policy, 0, "[127.0.0.1]", request("CONNECT", {})),
      event(Source::milter, Stage::connect, milter, 0, "[127.0.0.1]",
            {{"j", "mx.test.example"}, {"_", "localhost [127.0.0.1]"}, {"v", "Postfix 3.7.11"},
             {"{daemon_name}", "mx.test.example"}, {"{daemon_addr}", "127.0.0.1"},
             {"{client_addr}", "127.0.0.1"}, {"{client_port}", port},
             {"{client_name}", "localhost"}, {"{client_resolve}", "OK"},
             {"client_addr", "127.0.0.1"}, {"client_port", port}, {"server_port", "40855"}}),
      event(Source::policy, Stage::helo, policy, 0, "vm", request("HELO", {{"helo_name", "vm"}})),
      event(Source::milter, Stage::helo, milter, 0, "vm", {}),
      event(Source::policy, Stage::mail, policy, 0, "<bench@sender.example>",
            request("MAIL", envelope)),
      event(Source::milter, Stage::mail, milter, 1, "<bench@sender.example>",
            {{"{mail_addr}", "bench@sender.example"}, {"{mail_host}", "sender.example"},
             {"{mail_mailer}", "discard"}}),
      event(Source::policy, Stage::rcpt, policy, 1, "<rcpt@test.example>", request("RCPT", rcpt)),
      event(Source::milter, Stage::rcpt, milter, 1, "<rcpt@test.example>",
            {{"{rcpt_addr}", "rcpt@test.example"}, {"{rcpt_mailer}", "discard"},
             {"rejected", "0"}}),
      event(Source::policy, Stage::data, policy, 1, "", request("DATA", data)),
      event(Source::milter, Stage::data, milter, 1, "", {{"queue_id", queue_id}}),
      event(Source::milter, Stage::eom, milter, 1, "", {{"queue_id", queue_id}}),
      event(Source::milter, Stage::close, milter, 0, "", {}),
      event(Source::log, Stage::connect, log, 0, "", log_client),
      event(Source::log, Stage::close, log, 0, "", log_close),
  };
}

nlohmann::json parsed(const std::string& text) { return nlohmann::json::parse(text); }

TEST_F(EventWriterTest, RepeatedAttributesAreStoredOnceAndReadBackWhole) {
  std::vector<std::string> expected;
  for (int n = 1; n <= 20; ++n) {
    for (Event& e : lab_session(n)) {
      e.time_us = ++now_;
      expected.push_back(attributes_to_json(e.attributes));
      ASSERT_TRUE(writer_->apply(e));
    }
  }
  // The events view: every row's attributes whole, as written before schema 9.
  const auto whole = rows("SELECT attributes FROM events ORDER BY id");
  ASSERT_EQ(whole.size(), expected.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(parsed(whole[i]), parsed(expected[i])) << "event " << i;
  }
  // The session reader (smtpscope sessions, reports) reads them whole too.
  SessionFilter all;
  all.limit = 1000;
  auto sessions = read_sessions(*db_, all);
  ASSERT_TRUE(sessions) << sessions.message();
  std::vector<nlohmann::json> read;
  for (const auto& session : sessions.value()) {
    for (const auto& e : session.events) read.push_back(parsed(e.attributes_json));
  }
  std::vector<nlohmann::json> wanted;
  for (const auto& text : expected) wanted.push_back(parsed(text));
  std::sort(read.begin(), read.end());
  std::sort(wanted.begin(), wanted.end());
  EXPECT_EQ(read, wanted);
  // Stored: a few shared sets, and rows of what differs; under a third of the
  // whole attributes.
  const auto stored = rows("SELECT (SELECT sum(length(attributes)) FROM event_rows) +"
                           " (SELECT sum(length(attributes)) FROM attribute_sets)");
  const auto written = rows("SELECT sum(length(attributes)) FROM events");
  EXPECT_LT(std::stoll(stored.at(0)) * 3, std::stoll(written.at(0)));
  EXPECT_LT(std::stoll(rows("SELECT count(*) FROM attribute_sets").at(0)), 20);
}

TEST_F(EventWriterTest, SessionTimelineShowsEveryEventsAttributesWhole) {
  for (Event& e : lab_session(1)) {
    e.time_us = ++now_;
    ASSERT_TRUE(writer_->apply(e));
  }
  EXPECT_EQ(rows("SELECT json_extract(attributes, '$.server_port') FROM session_timeline"
                 " WHERE source = 'policy' AND stage = 'data'"),
            std::vector<std::string>{"40855"});
  EXPECT_EQ(rows("SELECT json_extract(attributes, '$.program') FROM session_timeline"
                 " WHERE source = 'log' AND stage = 'close'"),
            std::vector<std::string>{"postfix/smtpd"});
}

// A patch: what differs, null for what the set has and the event lacks; a
// repeated name keeps its first value.
TEST(AttributePatch, JsonPatchOfTheSetGivesTheWholeAttributes) {
  auto db = testing::migrated_memory_database();
  ASSERT_NE(db, nullptr);
  const std::vector<Attribute> set = {{"a", "1"}, {"b", "2"}, {"gone", "x"}, {"clock", "second"}};
  const std::vector<Attribute> attributes = {{"b", "2"},        {"a", "changed"},
                                             {"clock", "second"}, {"new", "line\nbreak \x01\xff"},
                                             {"a", "second a"}, {"empty", ""}};
  const AttributePatch patch = attributes_patch(attributes, distinct_attributes(set));
  EXPECT_EQ(parsed(patch.text),
            parsed(R"({"a":"changed","new":"line\nbreak \u0001\ufffd","empty":"","gone":null})"));
  auto q = db->prepare("SELECT json_patch(?1, ?2)");
  ASSERT_TRUE(q);
  q.value().bind(1, attributes_to_json(set)).bind(2, patch.text);
  ASSERT_TRUE(q.value().step().value());
  EXPECT_EQ(parsed(q.value().column_text(0)), parsed(attributes_to_json(attributes)));
}

// A log line stamped in whole seconds goes after the other sensors' events
// of its second, also when its row is a patch that leaves `clock` to its base.
TEST_F(EventWriterTest, ALogLineInWholeSecondsIsOrderedByItsPatchedClock) {
  const std::vector<Attribute> client = {{"client_name", "localhost"},
                                         {"client_addr", "192.0.2.7"},
                                         {"program", "postfix/smtpd"},
                                         {"pid", "26279"},
                                         {"host", "mx"},
                                         {"clock", "second"}};
  apply(Stage::connect, 0, "[192.0.2.7]", {{"client_addr", "192.0.2.7"}});
  apply(Stage::connect, 0, "", client, "log:mx:26279", Source::log);
  std::vector<Attribute> counters = client;
  counters.push_back({"commands", "1"});
  apply(Stage::close, 0, "", counters, "log:mx:26279", Source::log);
  apply(Stage::close, 0);
  ASSERT_EQ(rows("SELECT count(*) FROM event_rows WHERE source = 'log' AND stage = 'close'"
                 " AND base_id IS NOT NULL AND attributes NOT LIKE '%clock%'"),
            std::vector<std::string>{"1"});
  SessionFilter all;
  auto sessions = read_sessions(*db_, all);
  ASSERT_TRUE(sessions) << sessions.message();
  ASSERT_EQ(sessions.value().size(), 1u);
  std::vector<std::string> order;
  for (const auto& e : sessions.value()[0].events) order.push_back(e.source + " " + e.stage);
  EXPECT_EQ(order, (std::vector<std::string>{"milter connect", "milter close", "log connect",
                                             "log close"}));
}

// A batch that is rolled back forgets the attribute set it created: the
// retried batch makes it again, and nothing points at a set that is gone.
TEST_F(EventWriterTest, ARolledBackBatchForgetsItsAttributeSets) {
  const std::vector<Event> session = lab_session(1);
  ASSERT_TRUE(db_->exec("BEGIN"));
  auto saved = writer_->checkpoint();
  for (const Event& e : session) ASSERT_TRUE(writer_->apply(e));
  ASSERT_TRUE(db_->exec("ROLLBACK"));
  writer_->restore(std::move(saved));
  for (const Event& e : session) ASSERT_TRUE(writer_->apply(e));
  EXPECT_EQ(rows("SELECT count(*) FROM event_rows r LEFT JOIN attribute_sets a"
                 " ON a.id = r.set_id WHERE r.set_id IS NOT NULL AND a.id IS NULL"),
            std::vector<std::string>{"0"});
  const auto whole = rows("SELECT attributes FROM events ORDER BY id");
  ASSERT_EQ(whole.size(), session.size());
  for (std::size_t i = 0; i < whole.size(); ++i) {
    EXPECT_EQ(parsed(whole[i]), parsed(attributes_to_json(session[i].attributes)));
  }
}

// The reader's order: by time, a log line stamped in whole seconds at the
// end of its second (its attributes whole only after the patch, and with
// "clock" after other keys or inside another value too), events of one
// time in the order they were recorded.
TEST_F(EventWriterTest, TheReaderPutsWholeSecondLogLinesAtTheEndOfTheirSecond) {
  ASSERT_TRUE(db_->exec(
      "INSERT INTO sessions (id, stream, client_addr, connect_us) VALUES (1, 's', '192.0.2.1', 0);"
      "INSERT INTO attribute_sets (id, attributes) VALUES (1, '{\"pid\":\"7\",\"clock\":\"second\"}');"
      "INSERT INTO event_rows (id, session_id, source, stage, time_us, argument, attributes, set_id)"
      " VALUES (1, 1, 'log', 'connect', 5000000, 'a', '{}', 1),"
      " (2, 1, 'milter', 'connect', 5000001, 'b', '{}', NULL),"
      " (3, 1, 'log', 'helo', 5000000, 'c', '{\"note\":\"\\\"clock\\\":\\\"second\\\"\"}', NULL),"
      " (4, 1, 'milter', 'helo', 5000001, 'd', '{}', NULL),"
      " (5, 1, 'log', 'close', 5999999, 'e', '{\"pid\":\"7\", \"clock\" : \"second\"}', NULL),"
      " (6, 1, 'log', 'quit', 4000000, 'f', '{\"clock\":\"us\"}', NULL)"));
  SessionFilter all;
  auto sessions = read_sessions(*db_, all);
  ASSERT_TRUE(sessions) << sessions.message();
  ASSERT_EQ(sessions.value().size(), 1u);
  std::string order;
  for (const auto& e : sessions.value().front().events) order += e.argument;
  // f (4 s, microseconds), c (its "clock" only inside a value), b, d, then
  // a and e at the end of second 5, in the order recorded.
  EXPECT_EQ(order, "fcbdae");
}

}  // namespace
}  // namespace smtpscope
