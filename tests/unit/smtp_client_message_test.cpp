#include "smtp_client_message.h"

#include <gtest/gtest.h>

namespace smtpscope::ingest {
namespace {

TEST(SmtpClientMessage, ProbeStatusWithTheStateInItsReason) {
  auto r = parse_smtp_client_message(
      "CB420A7291C: to=<user@remote.example>, relay=127.0.0.1[127.0.0.1]:46523, delay=0.01, "
      "delays=0/0/0/0, dsn=4.4.2, status=undeliverable (lost connection with "
      "127.0.0.1[127.0.0.1] while sending MAIL FROM)");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->kind, "status");
  EXPECT_EQ(r->queue_id, "CB420A7291C");
  EXPECT_EQ(r->recipient, "user@remote.example");
  EXPECT_EQ(r->server_addr, "127.0.0.1");
  EXPECT_EQ(r->server_port, 46523);
  EXPECT_EQ(r->dsn, "4.4.2");
  EXPECT_EQ(r->status, "undeliverable");
  EXPECT_TRUE(r->probe);
  EXPECT_EQ(r->state, "MAIL FROM");
}

TEST(SmtpClientMessage, SentAndDeferred) {
  auto sent = parse_smtp_client_message(
      "ABC12345: to=<b@example.org>, relay=mx.example.org[203.0.113.5]:25, delay=0.2, "
      "delays=0/0/0.1/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued as X1)");
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->status, "sent");
  EXPECT_FALSE(sent->probe);
  EXPECT_EQ(sent->server_name, "mx.example.org");
  auto none = parse_smtp_client_message(
      "ABC12345: to=<b@example.org>, relay=none, delay=30, dsn=4.4.1, status=deferred "
      "(connect to mx.example.org[203.0.113.5]:25: Connection timed out)");
  ASSERT_TRUE(none);  // no server was reached: the one it tried
  EXPECT_EQ(none->status, "deferred");
  EXPECT_EQ(none->server_name, "mx.example.org");
  EXPECT_EQ(none->server_addr, "203.0.113.5");
  EXPECT_EQ(none->server_port, 25);
}

// relay=none deliveries (a real relay log: 56 of them, 21 attributed) go to
// the destination they tried, or the name that did not resolve.
TEST(SmtpClientMessage, UndeliveredGoToTheirDestination) {
  auto refused = parse_smtp_client_message(
      "4C1FEXXXX: to=<a@guick.cz>, relay=none, delay=0.1, delays=0/0/0.1/0, dsn=4.4.1, "
      "status=deferred (connect to guick.cz[69.43.161.182]:25: Connection refused)");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->server_addr, "69.43.161.182");
  auto suspended = parse_smtp_client_message(
      "2DC5552A34: to=<user@yahoo.com>, relay=none, delay=63495, delays=63350/144/0/0, "
      "dsn=4.4.2, status=deferred (delivery temporarily suspended: lost connection with "
      "mta7.am0.yahoodns.net[98.136.216.22] while sending RCPT TO)");
  ASSERT_TRUE(suspended);
  EXPECT_EQ(suspended->server_name, "mta7.am0.yahoodns.net");
  EXPECT_EQ(suspended->server_addr, "98.136.216.22");
  EXPECT_FALSE(suspended->server_port);
  auto unresolved = parse_smtp_client_message(
      "4C1FEXXXX: to=<a@centum.cz>, relay=none, delay=0.1, dsn=4.4.3, status=deferred (Host or "
      "domain name not found. Name service error for name=centum.cz type=MX: Host not found, "
      "try again)");
  ASSERT_TRUE(unresolved);
  EXPECT_EQ(unresolved->server_name, "centum.cz");
  EXPECT_EQ(unresolved->server_addr, "");
  EXPECT_EQ(unresolved->status, "deferred");
  auto other = parse_smtp_client_message(
      "4C1FEXXXX: to=<a@b.example>, relay=none, delay=0.1, dsn=4.3.0, status=deferred "
      "(mail transport unavailable)");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->server_name, "b.example");
  EXPECT_EQ(other->server_addr, "");
}

// A server is NAME[ADDR] too: the address is the bracketed part ending it.
TEST(SmtpClientMessage, ServerAddressIsTheLastBracketedPart) {
  auto status = parse_smtp_client_message(
      "ABC12345: to=<b@example.org>, relay=mx[x[203.0.113.5]:25, delay=0.2, dsn=2.0.0, "
      "status=sent (250 Ok)");
  ASSERT_TRUE(status);
  EXPECT_EQ(status->server_name, "mx[x");
  EXPECT_EQ(status->server_addr, "203.0.113.5");
  EXPECT_EQ(status->server_port, 25);
  auto reply = parse_smtp_client_message(
      "ABC12345: host a[b[203.0.113.6] said: 550 no (in reply to RCPT TO command)");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->server_name, "a[b");
  EXPECT_EQ(reply->server_addr, "203.0.113.6");
}

TEST(SmtpClientMessage, OtherServerLines) {
  auto lost = parse_smtp_client_message(
      "4F3A1: lost connection with mx.example.org[203.0.113.5] while sending RCPT TO");
  ASSERT_TRUE(lost);
  EXPECT_EQ((std::pair{lost->kind, lost->state}), (std::pair{std::string_view("lost"),
                                                             std::string_view("RCPT TO")}));
  auto timeout = parse_smtp_client_message(
      "4F3A1: conversation with mx.example.org[203.0.113.5] timed out while receiving the "
      "initial server greeting");
  ASSERT_TRUE(timeout);
  EXPECT_EQ(timeout->state, "initial server greeting");
  auto reply = parse_smtp_client_message(
      "4F3A1: host mx.example.org[203.0.113.5] said: 451 4.7.1 Try later (in reply to RCPT TO "
      "command)");
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->kind, "reply");
  EXPECT_EQ(reply->state, "RCPT TO");
  auto connect = parse_smtp_client_message(
      "connect to mx.example.org[203.0.113.5]:25: Connection refused");
  ASSERT_TRUE(connect);
  EXPECT_EQ(connect->kind, "connect");
  EXPECT_EQ(connect->reason, "Connection refused");
  auto refused = parse_smtp_client_message(
      "4F3A1: mx.example.org[203.0.113.5] refused to talk to me: 554 5.7.1 go away");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->kind, "refused");
  EXPECT_FALSE(parse_smtp_client_message("Untrusted TLS connection established to x[1.2.3.4]:25"));
}

}  // namespace
}  // namespace smtpscope::ingest
