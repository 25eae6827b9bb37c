// Golden-file tests for the timeline renderers: a fixed set of sessions in,
// the expected text and JSON beside it in tests/fixtures/golden/. Run with
// SMTPSCOPE_UPDATE_GOLDEN=1 to rewrite them on purpose, then review the diff.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <limits>
#include <sstream>

#include "duration.h"
#include "timeline_json.h"
#include "time_view.h"
#include "timeline_text.h"

namespace smtpscope::cli {
namespace {

const std::string golden_dir = std::string(SMTPSCOPE_SOURCE_DIR) + "/tests/fixtures/golden/";

std::vector<SessionRecord> sample_sessions() {
  const std::int64_t t0 = 1'795'600'000'000'000;
  SessionRecord proxy;
  proxy.id = 1;
  proxy.client_addr = "192.0.2.7";
  proxy.client_port = 40001;
  proxy.client_name = "unknown";
  proxy.server_addr = "198.51.100.1";
  proxy.server_port = 25;
  proxy.connect_us = t0;
  proxy.close_us = t0 + 10'500'000;
  proxy.helo = "ws7.corp.example";
  auto event = [&](std::string stage, std::int64_t offset, std::optional<std::int64_t> seq,
                   std::string argument, std::string attributes = "{}") {
    proxy.events.push_back(
        EventRecord{"milter", std::move(stage), t0 + offset, seq, std::move(argument),
                    std::move(attributes)});
  };
  event("connect", 0, std::nullopt, "[192.0.2.7]");
  event("helo", 1'000, std::nullopt, "ws7.corp.example");
  event("mail", 2'000, 1, "<clerk@corp.example>", R"({"esmtp":"SIZE=1000"})");
  event("rcpt", 3'000, 1, "<boss@corp.example>", R"({"rejected":"0"})");
  event("abort", 10'004'000, 1, "");
  event("mail", 10'004'100, 2, "<clerk@corp.example>");
  event("rcpt", 10'004'200, 2, "<no@corp.example>",
        R"({"rejected":"1","status":"5.7.1","reason":"Recipient address rejected: no"})");
  event("rcpt", 10'004'300, 2, "<boss@corp.example>", R"({"rejected":"0"})");
  event("data", 10'004'400, 2, "");
  event("header", 10'005'000, 2, "X-Mailer: <script>alert(1)</script>\x1b[2J");
  event("eom", 10'006'000, 2, "", R"({"queue_id":"4F3A1","body_bytes":"120"})");
  event("unknown", 10'007'000, std::nullopt, "XYZZY\r\n");
  event("close", 10'500'000, std::nullopt, "");
  proxy.transactions = {
      TransactionRecord{1, "<clerk@corp.example>", 1, 0, false, "", std::nullopt, "aborted"},
      TransactionRecord{2, "<clerk@corp.example>", 1, 1, true, "4F3A1", 120, "delivered"}};

  SessionRecord empty_helo;
  empty_helo.id = 2;
  empty_helo.client_addr = "203.0.113.9";
  empty_helo.client_port = 51000;
  empty_helo.client_name = "app.example";
  empty_helo.server_addr = "198.51.100.1";
  empty_helo.server_port = 25;
  empty_helo.connect_us = t0 + 60'000'000;
  empty_helo.close_us = t0 + 60'000'300;
  empty_helo.events = {EventRecord{"milter", "connect", t0 + 60'000'000, std::nullopt, "", "{}"},
                       EventRecord{"milter", "close", t0 + 60'000'300, std::nullopt, "", "{}"}};
  return {proxy, empty_helo};
}

void expect_golden(const std::string& name, const std::string& actual) {
  const std::string path = golden_dir + name;
  if (std::getenv("SMTPSCOPE_UPDATE_GOLDEN")) {
    std::ofstream(path) << actual;
  }
  std::ifstream file(path);
  ASSERT_TRUE(file) << "missing golden file " << path;
  std::stringstream expected;
  expected << file.rdbuf();
  EXPECT_EQ(actual, expected.str()) << "differs from " << path;
}

TEST(Timeline, TextMatchesGolden) {
  expect_golden("timeline.txt", render_timelines_text(sample_sessions()));
}

TEST(Timeline, JsonMatchesGolden) {
  expect_golden("timeline.json", render_timelines_json(sample_sessions()));
}

TEST(Timeline, TextNeverCarriesRawControlCharacters) {
  const std::string text = render_timelines_text(sample_sessions());
  for (char c : text) {
    EXPECT_TRUE(c == '\n' || static_cast<unsigned char>(c) >= 0x20) << static_cast<int>(c);
  }
}

// SMTP AUTH shows once per transaction, at MAIL, from either sensor; the
// login is client text and is escaped like any other.
TEST(Timeline, MailShowsWhoLoggedIn) {
  SessionRecord s;
  s.id = 3;
  s.client_addr = "192.0.2.8";
  s.connect_us = 1'795'600'000'000'000;
  s.events = {
      EventRecord{"policy", "mail", s.connect_us + 10, 1, "a@example.org",
                  R"({"sasl_method":"PLAIN","sasl_username":"alice\u001b[2J"})"},
      EventRecord{"milter", "mail", s.connect_us + 20, 1, "<a@example.org>",
                  R"({"{auth_type}":"LOGIN","{auth_authen}":"alice"})"},
      EventRecord{"milter", "rcpt", s.connect_us + 30, 1, "<b@example.org>",
                  R"({"{auth_authen}":"alice"})"}};
  const std::string text = render_timelines_text({s});
  EXPECT_NE(text.find("check MAIL FROM:<a@example.org>   [AUTH alice\\x1b[2J PLAIN]"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("C: MAIL FROM:<a@example.org>   [AUTH alice LOGIN]"), std::string::npos)
      << text;
  EXPECT_EQ(text.find("RCPT TO:<b@example.org>   [AUTH"), std::string::npos) << text;
}

TEST(Timeline, NoSessionsSaysSo) { EXPECT_EQ(render_timelines_text({}), "no sessions recorded\n"); }

// Stored times are any 64-bit microsecond count: a log line may say year
// 9999. std::chrono through nanoseconds showed 9999-12-31 as 1816-03-30, and
// the HTML axis put a dot at cx=-1.39e15.
constexpr std::int64_t year_9999_us = 253'402'300'799'000'000;  // 9999-12-31 23:59:59

SessionRecord session_at(std::int64_t connect_us, std::vector<std::int64_t> event_times) {
  SessionRecord s;
  s.id = 9;
  s.client_addr = "192.0.2.9";
  s.connect_us = connect_us;
  for (std::int64_t t : event_times) {
    s.events.push_back(EventRecord{"milter", "helo", t, std::nullopt, "x.example", "{}"});
  }
  s.close_us = event_times.empty() ? connect_us : event_times.back();
  return s;
}

TEST(TimeView, FormatsTheEdgesOfTheCalendar) {
  EXPECT_EQ(utc_text(0), "1970-01-01 00:00:00 UTC");
  EXPECT_EQ(utc_text(-1), "1969-12-31 23:59:59 UTC");
  EXPECT_EQ(utc_text(1'795'600'000'999'999), "2026-11-25 09:46:40 UTC");
  EXPECT_EQ(utc_text(year_9999_us), "9999-12-31 23:59:59 UTC");
  EXPECT_EQ(utc_text(year_9999_us + 999'999), "9999-12-31 23:59:59 UTC");
  EXPECT_EQ(utc_text(-62'135'596'800'000'000), "0001-01-01 00:00:00 UTC");
  EXPECT_EQ(clock_text(year_9999_us), "23:59:59");
  EXPECT_EQ(clock_text(0), "00:00:00");
}

TEST(TimeView, OutsideTheCalendarShowsTheRawValue) {
  EXPECT_EQ(utc_text(year_9999_us + 1'000'000),
            "253402300800000000 us since 1970 (outside years 1-9999)");
  EXPECT_EQ(utc_text(std::numeric_limits<std::int64_t>::max()),
            "9223372036854775807 us since 1970 (outside years 1-9999)");
  EXPECT_EQ(clock_text(std::numeric_limits<std::int64_t>::min()),
            "-9223372036854775808 us since 1970 (outside years 1-9999)");
}

TEST(TimeView, DifferencesNeverOverflow) {
  constexpr auto max = std::numeric_limits<std::int64_t>::max();
  constexpr auto min = std::numeric_limits<std::int64_t>::min();
  EXPECT_EQ(microseconds_between(0, year_9999_us), year_9999_us);
  EXPECT_EQ(microseconds_between(min, max), max);
  EXPECT_EQ(microseconds_between(max, min), min);
  EXPECT_DOUBLE_EQ(seconds_between(0, year_9999_us), 253'402'300'799.0);
  EXPECT_GT(seconds_between(min, max), 1.8e13);
  EXPECT_DOUBLE_EQ(seconds_between(1'795'600'000'000'000, 1'795'600'000'000'001), 1e-6);
}

TEST(TimeView, AxisPositionsStayOnTheAxis) {
  EXPECT_DOUBLE_EQ(axis_fraction(150, 100, 100.0), 0.5);
  EXPECT_DOUBLE_EQ(axis_fraction(year_9999_us, 0, 1000.0), 1.0);
  EXPECT_DOUBLE_EQ(axis_fraction(0, year_9999_us, 1000.0), 0.0);  // before its session began
  EXPECT_DOUBLE_EQ(axis_fraction(std::numeric_limits<std::int64_t>::max(),
                                 std::numeric_limits<std::int64_t>::min(), 1.0), 1.0);
  EXPECT_DOUBLE_EQ(axis_fraction(5, 0, 0.0), 0.0);
}

TEST(Timeline, AYear9999SessionIsShownAsYear9999) {
  const std::string text = render_timelines_text({session_at(year_9999_us, {year_9999_us + 500})});
  EXPECT_NE(text.find("9999-12-31 23:59:59 UTC  0.001 s"), std::string::npos) << text;
  EXPECT_NE(text.find("+0.001s  milter  C: HELO/EHLO x.example"), std::string::npos) << text;
  EXPECT_EQ(text.find("1816"), std::string::npos) << text;
}

TEST(Timeline, A1970SessionIsShownAs1970) {
  const std::string text = render_timelines_text({session_at(0, {2'000})});
  EXPECT_NE(text.find("1970-01-01 00:00:00 UTC  0.002 s"), std::string::npos) << text;
}

TEST(Timeline, EventsCenturiesApartKeepTheirDistance) {
  // A connect in 1970 and an event in 9999: 253402300799 s apart, which
  // std::chrono's nanoseconds cannot hold.
  const std::vector<SessionRecord> sessions = {session_at(0, {year_9999_us})};
  const std::string text = render_timelines_text(sessions);
  EXPECT_NE(text.find("1970-01-01 00:00:00 UTC  253402300799.000 s"), std::string::npos) << text;
  EXPECT_NE(text.find("+253402300799.000s  milter"), std::string::npos) << text;
  const std::string json = render_timelines_json(sessions);
  EXPECT_NE(json.find("\"offset_us\": 253402300799000000"), std::string::npos) << json;
  // The extremes of the type: the JSON offset saturates instead of wrapping.
  const std::string extreme = render_timelines_json(
      {session_at(std::numeric_limits<std::int64_t>::min(),
                  {std::numeric_limits<std::int64_t>::max()})});
  EXPECT_NE(extreme.find("\"offset_us\": 9223372036854775807"), std::string::npos) << extreme;
}

// Sessions only the log saw, with the facts it logs beyond the commands.
SessionRecord log_session(std::vector<EventRecord> events) {
  SessionRecord s;
  s.id = 9;
  s.client_addr = "192.0.2.7";
  s.client_name = "unknown";
  s.connect_us = 1'795'600'000'000'000;
  s.close_us = s.connect_us + 2'000'000;
  for (auto& e : events) e.time_us += s.connect_us;
  s.events = std::move(events);
  return s;
}

EventRecord logged(std::string stage, std::int64_t at_us, std::string argument,
                   std::string attributes) {
  return EventRecord{"log", std::move(stage), at_us, std::nullopt, std::move(argument),
                     std::move(attributes)};
}

TEST(Timeline, AFailedTlsHandshakeSaysSo) {
  const std::string text = render_timelines_text({log_session(
      {logged("connect", 0, "", R"({"client_name":"unknown"})"),
       logged("tls", 10, "Connection reset by peer", R"({"outcome":"failed"})"),
       logged("lost", 20, "", R"({"after":"STARTTLS","tls":"failed"})"),
       logged("close", 30, "", R"({"ehlo":"1","starttls":"1","commands":"2"})")})});
  EXPECT_NE(text.find("log     TLS handshake failed: Connection reset by peer\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("log     lost connection after STARTTLS (TLS handshake failed)\n"),
            std::string::npos)
      << text;
}

TEST(Timeline, AContentRejectShowsTheRefusedLineAndTheReply) {
  const std::string text = render_timelines_text({log_session(
      {logged("connect", 0, "", R"({"client_name":"unknown"})"),
       logged("queued", 10, "", R"({"queue_id":"7A6503EC2B"})"),
       logged("reject", 20, "Subject: win \x1b[2J big",
              R"({"action":"reject","command":"header","queue_id":"7A6503EC2B","dsn":"5.7.1",)"
              R"("reply":"5.7.1 Looks like spam to me.","from":"a@x.example"})"),
       logged("close", 30, "", R"({"ehlo":"1","mail":"1","rcpt":"1","data":"0/1","quit":"1"})")})});
  EXPECT_NE(text.find("log     reject header Subject: win \\x1b[2J big   S: 5.7.1 Looks like spam "
                      "to me.\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  1 mail transaction (0 delivered, 1 not), counted from the log's counters\n"),
            std::string::npos)
      << text;
}

TEST(Timeline, AFailedAuthNamesTheMethodAndTheUser) {
  const std::string text = render_timelines_text({log_session(
      {logged("reject", 0, "(reason unavailable)",
              R"({"action":"auth-failed","command":"AUTH","sasl_method":"LOGIN","outcome":"failed",)"
              R"("sasl_username":"admin@domain.tld"})")})});
  EXPECT_NE(text.find("log     AUTH LOGIN failed (user admin@domain.tld): (reason unavailable)\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("  no mail transaction\n"), std::string::npos) << text;
}

// Postfix 2.x: no counters, transactions counted from queue ids; the
// timeline no longer says "no mail transaction" under "C M R D E ... Z".
TEST(Timeline, APostfix2SessionCountsItsTransactionsFromQueueIds) {
  const std::string text = render_timelines_text({log_session(
      {logged("connect", 0, "", R"({"client_name":"unknown"})"),
       logged("queued", 10, "", R"({"queue_id":"Q1","from":"a@x.example"})"),
       logged("queued", 20, "", R"({"queue_id":"Q2","from":""})"),
       logged("close", 30, "", "{}")})});
  EXPECT_EQ(text.find("no mail transaction"), std::string::npos) << text;
  EXPECT_NE(text.find("  2 mail transactions (2 delivered, 0 not), counted from the log's queue "
                      "ids\n"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace smtpscope::cli

namespace smtpscope {
namespace {

TEST(Duration, ParsesUnits) {
  EXPECT_EQ(parse_duration_us("90").value(), 90'000'000);
  EXPECT_EQ(parse_duration_us("90s").value(), 90'000'000);
  EXPECT_EQ(parse_duration_us("15m").value(), 900'000'000);
  EXPECT_EQ(parse_duration_us("24h").value(), 86'400'000'000);
  EXPECT_EQ(parse_duration_us("7d").value(), 604'800'000'000);
}

TEST(Duration, RejectsNonsense) {
  for (const char* bad : {"", "h", "-5m", "5 m", "5w", "99999999999999999d"}) {
    auto parsed = parse_duration_us(bad);
    EXPECT_FALSE(parsed) << bad;
  }
  EXPECT_EQ(parse_duration_us("5w").message(), "bad duration \"5w\" (use e.g. 90s, 15m, 24h, 7d)");
}

}  // namespace
}  // namespace smtpscope
