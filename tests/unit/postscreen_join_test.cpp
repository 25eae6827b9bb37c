// postscreen's half and smtpd's half of one connection become one session
// (with and without smtpd_client_port_logging), and the connections
// postscreen ends itself are closed: parsed lines through the Ingester into
// a database.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <string>

#include "ingester.h"
#include "postscreen_handoff.h"
#include "test_support.h"

namespace smtpscope::ingest {
namespace {

using testing::query_number;
using testing::TempDir;

// A postscreen pass handed to smtpd 200, a pregreet postscreen rejects and
// disconnects, a client that hangs up in the greet wait. `port`: what
// smtpd appends to the client (":54810" with smtpd_client_port_logging).
std::string screened_log(const std::string& port) {
  const std::string smtpd_client = "mail.example.net[198.51.100.7]" + port;
  return "Nov 16 11:03:05 mx postfix/postscreen[100]: CONNECT from [198.51.100.7]:54810 to "
         "[192.0.2.1]:25\n"
         "Nov 16 11:03:11 mx postfix/postscreen[100]: PASS OLD [198.51.100.7]:54810\n"
         "Nov 16 11:03:12 mx postfix/smtpd[200]: connect from " + smtpd_client + "\n"
         "Nov 16 11:03:12 mx postfix/postscreen[100]: CONNECT from [203.0.113.5]:1234 to "
         "[192.0.2.1]:25\n"
         "Nov 16 11:03:12 mx postfix/smtpd[200]: Anonymous TLS connection established from " +
         smtpd_client + ": TLSv1.2 with cipher X (256/256 bits)\n"
         "Nov 16 11:03:12 mx postfix/postscreen[100]: PREGREET 11 after 0.11 from "
         "[203.0.113.5]:1234: EHLO ylmf-pc\\r\\n\n"
         "Nov 16 11:03:13 mx postfix/postscreen[100]: NOQUEUE: reject: RCPT from "
         "[203.0.113.5]:1234: 550 5.3.2 Service currently unavailable; from=<a@example.org>, "
         "to=<b@example.com>, proto=ESMTP, helo=<ylmf-pc>\n"
         "Nov 16 11:03:13 mx postfix/postscreen[100]: DISCONNECT [203.0.113.5]:1234\n"
         "Nov 16 11:03:15 mx postfix/smtpd[200]: disconnect from " + smtpd_client +
         " ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n"
         "Nov 16 11:03:20 mx postfix/postscreen[100]: CONNECT from [203.0.113.9]:999 to "
         "[192.0.2.1]:25\n"
         "Nov 16 11:03:21 mx postfix/postscreen[100]: HANGUP after 0.8 from [203.0.113.9]:999 in "
         "tests before SMTP handshake\n"
         // The same address again through smtpd, no pass before it: its own session.
         "Nov 16 11:05:00 mx postfix/smtpd[200]: connect from " + smtpd_client + "\n"
         "Nov 16 11:05:01 mx postfix/smtpd[200]: disconnect from " + smtpd_client +
         " ehlo=1 quit=1 commands=2\n";
}

void ingest(const std::string& log, const std::string& db) {
  IngestOptions options;
  options.year = 2025;
  auto ingester = Ingester::open(db, 5000, options);
  ASSERT_TRUE(ingester) << ingester.message();
  std::atomic<bool> stop{false};
  auto counts = ingester.value()->ingest(log, stop);
  ASSERT_TRUE(counts) << counts.message();
  EXPECT_EQ(counts.value().malformed, 0u);
}

void expect_one_session_per_connection(const std::string& port) {
  TempDir dir;
  const std::string log = dir.file("mail.log");
  std::ofstream(log) << screened_log(port);
  const std::string db = dir.file("smtpscope.db");
  ingest(log, db);
  EXPECT_EQ(query_number(db, "SELECT count(*) FROM sessions"), 4);
  // None open, none partial.
  EXPECT_EQ(query_number(db, "SELECT count(*) FROM sessions WHERE close_us IS NULL OR partial"), 0);
  // The passed connection: postscreen's CONNECT and PASS, smtpd's three lines.
  const std::string passed = "(SELECT id FROM sessions WHERE client_port = 54810)";
  EXPECT_EQ(query_number(db, "SELECT count(*) FROM events WHERE session_id = " + passed), 5);
  EXPECT_EQ(query_number(db, "SELECT count(*) FROM events WHERE session_id = " + passed +
                                 " AND json_extract(attributes, '$.program') = 'postfix/postscreen'"),
            2);
  EXPECT_EQ(query_number(db, "SELECT count(*) FROM sessions WHERE client_port = 54810"
                             " AND client_name = 'mail.example.net' AND server_port = 25"
                             " AND close_us IS NOT NULL"),
            1);
  // The pregreet: its HELO on the PREGREET event, the reject and the
  // DISCONNECT in the same session, closed.
  const std::string pregreet = "(SELECT id FROM sessions WHERE client_port = 1234)";
  EXPECT_EQ(query_number(db, "SELECT count(*) FROM events WHERE session_id = " + pregreet), 4);
  EXPECT_EQ(query_number(db, "SELECT count(*) FROM events WHERE session_id = " + pregreet +
                                 " AND json_extract(attributes, '$.helo') = 'ylmf-pc'"
                                 " AND json_extract(attributes, '$.verdict') = 'PREGREET'"),
            1);
}

TEST(PostscreenJoin, WithoutSmtpdClientPortLogging) { expect_one_session_per_connection(""); }

TEST(PostscreenJoin, WithSmtpdClientPortLogging) { expect_one_session_per_connection(":54810"); }

SyslogLine line_at(std::string_view daemon, std::int64_t pid, std::int64_t time_s) {
  SyslogLine line;
  line.host = "mx";
  line.daemon = daemon;
  line.pid = pid;
  line.time_us = time_s * 1'000'000;
  return line;
}

LogRecord parsed(std::string_view daemon, std::string_view message) {
  ParsedMessage p = parse_postfix_message(daemon, message);
  EXPECT_EQ(p.kind, MessageKind::record) << message;
  return p.record;
}

TEST(PostscreenHandoff, APassIsTakenOnceWithinItsWindow) {
  PostscreenHandoff handoff;
  LogRecord pass = parsed("postscreen", "PASS NEW [192.0.2.9]:4000");
  handoff.observe(line_at("postscreen", 1, 100), pass);
  LogRecord first = parsed("smtpd", "connect from a.example[192.0.2.9]");
  handoff.observe(line_at("smtpd", 7, 101), first);
  EXPECT_EQ(first.client.port, 4000);
  LogRecord second = parsed("smtpd", "connect from a.example[192.0.2.9]");
  handoff.observe(line_at("smtpd", 8, 101), second);
  EXPECT_FALSE(second.client.port);  // the pass was used
  // Later lines of the adopting process take the port until its disconnect.
  LogRecord reject = parsed("smtpd", "NOQUEUE: reject: RCPT from a.example[192.0.2.9]: 550 5.1.1 "
                                     "no; from=<x@y> to=<z@w> proto=ESMTP helo=<a>");
  handoff.observe(line_at("smtpd", 7, 102), reject);
  EXPECT_EQ(reject.client.port, 4000);
  LogRecord other = parsed("smtpd", "lost connection after RCPT from a.example[192.0.2.9]");
  handoff.observe(line_at("smtpd", 8, 102), other);
  EXPECT_FALSE(other.client.port);  // another process: not the pass's
  LogRecord close = parsed("smtpd", "disconnect from a.example[192.0.2.9] quit=1 commands=1");
  handoff.observe(line_at("smtpd", 7, 103), close);
  EXPECT_EQ(close.client.port, 4000);
  LogRecord after = parsed("smtpd", "lost connection after CONNECT from a.example[192.0.2.9]");
  handoff.observe(line_at("smtpd", 7, 104), after);
  EXPECT_FALSE(after.client.port);
}

TEST(PostscreenHandoff, AnExpiredPassOrAnotherHostJoinsNothing) {
  PostscreenHandoff handoff;
  LogRecord pass = parsed("postscreen", "WHITELISTED [192.0.2.9]:4000");
  handoff.observe(line_at("postscreen", 1, 100), pass);
  LogRecord other_host = parsed("smtpd", "connect from a.example[192.0.2.9]");
  SyslogLine elsewhere = line_at("smtpd", 7, 101);
  elsewhere.host = "mx2";
  handoff.observe(elsewhere, other_host);
  EXPECT_FALSE(other_host.client.port);
  const std::int64_t late = 100 + PostscreenHandoff::window_us / 1'000'000 + 1;
  LogRecord too_late = parsed("smtpd", "connect from a.example[192.0.2.9]");
  handoff.observe(line_at("smtpd", 7, late), too_late);
  EXPECT_FALSE(too_late.client.port);
  // A rejected client is not handed over.
  LogRecord dnsbl = parsed("postscreen", "DNSBL rank 3 for [192.0.2.9]:4001");
  handoff.observe(line_at("postscreen", 1, 200), dnsbl);
  LogRecord connect = parsed("smtpd", "connect from a.example[192.0.2.9]");
  handoff.observe(line_at("smtpd", 7, 201), connect);
  EXPECT_FALSE(connect.client.port);
}

}  // namespace
}  // namespace smtpscope::ingest
