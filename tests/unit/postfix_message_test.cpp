#include "postfix_message.h"

#include <gtest/gtest.h>

#include "peer_name_check.h"
#include "queue_join.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <string>

namespace smtpscope::ingest {
namespace {

std::map<std::string, std::string> fields(const LogRecord& r) {
  std::map<std::string, std::string> out;
  for (std::size_t i = 0; i < r.field_count; ++i) {
    out.emplace(std::string(r.fields[i].name), std::string(r.fields[i].value));
  }
  return out;
}

LogRecord record(std::string_view daemon, std::string_view message) {
  const ParsedMessage parsed = parse_postfix_message(daemon, message);
  EXPECT_EQ(parsed.kind, MessageKind::record) << message;
  return parsed.record;
}

TEST(PostfixMessage, ConnectWithAndWithoutPort) {
  auto r = record("smtpd", "connect from mail.example.net[192.0.2.25]:40123");
  EXPECT_EQ(r.stage, Stage::connect);
  EXPECT_EQ(r.client.name, "mail.example.net");
  EXPECT_EQ(r.client.addr, "192.0.2.25");
  EXPECT_EQ(r.client.port, 40123);
  r = record("smtpd", "connect from unknown[2001:db8::1]");
  EXPECT_EQ(r.client.name, "unknown");
  EXPECT_EQ(r.client.addr, "2001:db8::1");
  EXPECT_FALSE(r.client.port);
  r = record("smtpd", "connect from unknown[unknown]");
  EXPECT_EQ(r.client.addr, "unknown");
}

TEST(PostfixMessage, DisconnectKeepsEveryCounter) {
  auto r = record("smtpd",
                  "disconnect from unknown[127.0.0.11]:58527 ehlo=1 mail=2 rcpt=0/2 data=1 "
                  "rset=2 noop=5 quit=1 commands=9/11");
  EXPECT_EQ(r.stage, Stage::close);
  EXPECT_EQ(fields(r), (std::map<std::string, std::string>{
                           {"ehlo", "1"}, {"mail", "2"}, {"rcpt", "0/2"}, {"data", "1"},
                           {"rset", "2"}, {"noop", "5"}, {"quit", "1"}, {"commands", "9/11"}}));
  EXPECT_EQ(fields(record("smtpd", "disconnect from x[192.0.2.1] commands=0/0")).at("commands"),
            "0/0");
  EXPECT_TRUE(fields(record("smtpd", "disconnect from x[192.0.2.1]")).empty());  // Postfix 2.x
}

TEST(PostfixMessage, AfterStateLines) {
  auto lost = record("smtpd", "lost connection after DATA (7774180 bytes) from x[192.0.2.1]:9");
  EXPECT_EQ(lost.stage, Stage::lost);
  EXPECT_EQ(fields(lost), (std::map<std::string, std::string>{{"after", "DATA"},
                                                              {"bytes", "7774180"}}));
  EXPECT_EQ(lost.client.port, 9);
  EXPECT_EQ(record("smtpd", "timeout after EHLO from x[192.0.2.1]").stage, Stage::timeout);
  EXPECT_EQ(record("smtpd", "too many errors after UNKNOWN from x[192.0.2.1]").stage,
            Stage::error_limit);
  // Postfix 3.10 and later prefix them with the queue id or NOQUEUE.
  auto prefixed = record("smtpd", "NOQUEUE: lost connection after RCPT from x[192.0.2.1]:7");
  EXPECT_EQ(prefixed.stage, Stage::lost);
  EXPECT_EQ(fields(prefixed).at("after"), "RCPT");
  auto pipelining = record("smtpd",
                           "improper command pipelining after HELO from x[192.0.2.1]:5: "
                           "MAIL FROM:<a@example.com>\\r\\nRCPT TO:<b@x>\\r\\n");
  EXPECT_EQ(pipelining.stage, Stage::pipelining);
  EXPECT_EQ(fields(pipelining).at("after"), "HELO");
  EXPECT_EQ(pipelining.argument, "MAIL FROM:<a@example.com>\\r\\nRCPT TO:<b@x>\\r\\n");
}

TEST(PostfixMessage, RejectLines) {
  auto r = record("smtpd",
                  "NOQUEUE: reject: RCPT from localhost[127.0.0.1]:5: 554 5.7.1 <r@x.example>: "
                  "Recipient address rejected: no such user here; from=<a b@example.com> "
                  "to=<r@x.example> proto=ESMTP helo=<client.example>");
  EXPECT_EQ(r.stage, Stage::reject);
  EXPECT_EQ(r.argument, "554 5.7.1 <r@x.example>: Recipient address rejected: no such user here");
  EXPECT_EQ(fields(r), (std::map<std::string, std::string>{
                           {"action", "reject"}, {"command", "RCPT"}, {"code", "554"},
                           {"from", "a b@example.com"}, {"to", "r@x.example"},
                           {"proto", "ESMTP"}, {"helo", "client.example"}}));
  auto milter = record("smtpd",
                       "3B7C1A7654F: milter-reject: END-OF-MESSAGE from m[192.0.2.25]: 5.7.1 "
                       "Content rejected; from=<a@example.com> to=<b@example.org> proto=ESMTP "
                       "helo=<mx.example.net>");
  EXPECT_EQ(fields(milter).at("action"), "milter-reject");
  EXPECT_EQ(fields(milter).at("queue_id"), "3B7C1A7654F");
  EXPECT_EQ(fields(milter).count("code"), 0u);
  auto screen = record("postscreen",
                       "NOQUEUE: reject: RCPT from [127.0.0.1]:39054: 550 5.5.1 Protocol error; "
                       "from=<a@example.com>, to=<bob@research.example>, proto=ESMTP, "
                       "helo=<bare.example>");
  EXPECT_EQ(screen.client.name, "");
  EXPECT_EQ(fields(screen).at("helo"), "bare.example");
}

// Postfix writes "TEXT; from=<S> to=<R> proto=P helo=<H>" (log_whatsup() in
// smtpd_check.c); S, R and H are the client's and may hold '>' and spaces.
TEST(PostfixMessage, RejectDetailsKeepAngleBracketsInsideValues) {
  auto r = record("smtpd",
                  "NOQUEUE: reject: RCPT from x[192.0.2.7]:5: 554 5.7.1 <r@x.example>: "
                  "Recipient address rejected: no; from=<\"a>b\"@x> to=<r@x.example> "
                  "proto=ESMTP helo=<<script>alert(1)</script>>");
  EXPECT_EQ(r.argument, "554 5.7.1 <r@x.example>: Recipient address rejected: no");
  const auto f = fields(r);
  EXPECT_EQ(f.at("from"), "\"a>b\"@x");
  EXPECT_EQ(f.at("to"), "r@x.example");
  EXPECT_EQ(f.at("proto"), "ESMTP");
  EXPECT_EQ(f.at("helo"), "<script>alert(1)</script>");
}

TEST(PostfixMessage, RejectDetailsEndOnlyBeforeALaterKey) {
  // A key inside a value ends it only after a '>'; an earlier key never does.
  auto r = record("smtpd",
                  "NOQUEUE: reject: RCPT from x[192.0.2.7]: 450 4.1.8 Sender rejected; "
                  "from=<\"a to=<b\"@x> to=<r@y> proto=SMTP helo=<a b> proto=X>");
  auto f = fields(r);
  EXPECT_EQ(f.at("from"), "\"a to=<b\"@x");
  EXPECT_EQ(f.at("to"), "r@y");
  EXPECT_EQ(f.at("proto"), "SMTP");
  EXPECT_EQ(f.at("helo"), "a b> proto=X");  // nothing comes after helo
  // Each field is optional; what Postfix knew is what it wrote.
  f = fields(record("smtpd",
                    "NOQUEUE: reject: EHLO from x[192.0.2.7]: 504 5.5.2 <User>: Helo command "
                    "rejected: need fully-qualified hostname; proto=SMTP helo=<User>"));
  EXPECT_EQ(f.count("from"), 0u);
  EXPECT_EQ((f.at("proto") + " " + f.at("helo")), "SMTP User");
  auto connect = record("smtpd",
                        "NOQUEUE: reject: CONNECT from x[192.0.2.7]: 450 4.7.25 Client host "
                        "rejected: cannot find your hostname, [192.0.2.7]; proto=SMTP");
  EXPECT_EQ(connect.argument,
            "450 4.7.25 Client host rejected: cannot find your hostname, [192.0.2.7]");
  EXPECT_EQ(fields(connect).at("proto"), "SMTP");
  // "; " in the reply (DNSBL texts) is part of it; an empty sender is kept.
  auto rbl = record("smtpd",
                    "NOQUEUE: reject: RCPT from x[192.0.2.7]: 554 5.7.1 Service unavailable; "
                    "Client host [192.0.2.7] blocked using zen.example; https://x/q?ip=1; "
                    "from=<> to=<r@y> proto=ESMTP helo=<h>");
  EXPECT_EQ(rbl.argument, "554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked "
                          "using zen.example; https://x/q?ip=1");
  EXPECT_EQ(fields(rbl).at("from"), "");
  // postscreen separates them with ", ".
  auto screen = record("postscreen",
                       "NOQUEUE: reject: RCPT from [192.0.2.7]:39054: 550 5.5.1 Protocol error; "
                       "from=<a>, b@x>, to=<r@y>, proto=ESMTP, helo=<<b>>");
  f = fields(screen);
  EXPECT_EQ(f.at("from"), "a>, b@x");
  EXPECT_EQ(f.at("to"), "r@y");
  EXPECT_EQ(f.at("helo"), "<b>");
}

// Hostile details cost time linear in the line (at most 8 starts of the
// details are tried): ten times the would-be starts take about ten times as
// long, not the hundred times a search from every start would. A ratio of
// the best of three runs, so it holds on a slow or sanitized build alike.
TEST(PostfixMessage, RejectDetailsCostLinearTime) {
  const auto hostile_line = [](int starts) {
    std::string line = "NOQUEUE: reject: RCPT from x[192.0.2.7]: 550 no";
    for (int i = 0; i < starts; ++i) line += "; from=<a> to=<";
    return line;
  };
  const auto time_to_parse = [](const std::string& line) {
    const auto started = std::chrono::steady_clock::now();
    EXPECT_EQ(parse_postfix_message("smtpd", line).kind, MessageKind::record);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  };
  // The best of seven each, taken in turns, so a loaded machine slows both.
  const std::string small_line = hostile_line(10000), large_line = hostile_line(100000);
  double small = 1e9, large = 1e9;
  for (int run = 0; run < 7; ++run) {
    small = std::min(small, time_to_parse(small_line));
    large = std::min(large, time_to_parse(large_line));
  }
  small = std::max(small, 1e-6);
  EXPECT_LT(large / small, 40.0) << small << " s for 10,000 starts, " << large << " for 100,000";
}

// A client is NAME[ADDR]: the address is the bracketed part that ends it,
// whatever junk the name holds.
TEST(PostfixMessage, ClientAddressIsTheLastBracketedPart) {
  auto r = record("smtpd", "connect from a[b[192.0.2.1]");
  EXPECT_EQ(r.client.name, "a[b");
  EXPECT_EQ(r.client.addr, "192.0.2.1");
  r = record("smtpd", "disconnect from a[b[192.0.2.1]:25 ehlo=1 commands=1");
  EXPECT_EQ((std::string(r.client.name) + "|" + std::string(r.client.addr)), "a[b|192.0.2.1");
  EXPECT_EQ(r.client.port, 25);
  EXPECT_EQ(fields(r).at("ehlo"), "1");
  r = record("smtpd", "lost connection after RCPT from a[[2001:db8::1]:7");
  EXPECT_EQ((std::string(r.client.name) + "|" + std::string(r.client.addr)), "a[|2001:db8::1");
  r = record("smtpd", "NOQUEUE: client=x[y[192.0.2.2]:25, sasl_method=PLAIN");
  EXPECT_EQ((std::string(r.client.name) + "|" + std::string(r.client.addr)), "x[y|192.0.2.2");
  EXPECT_EQ(fields(r).at("sasl_method"), "PLAIN");
  r = record("smtpd", "NOQUEUE: reject: RCPT from n[m[192.0.2.3]:9: 550 no; to=<r[x]>");
  EXPECT_EQ((std::string(r.client.name) + "|" + std::string(r.client.addr)), "n[m|192.0.2.3");
  EXPECT_EQ(fields(r).at("to"), "r[x]");
  EXPECT_EQ(parse_postfix_message("smtpd", "connect from x[1]2]").kind, MessageKind::malformed);
}

TEST(PostfixMessage, QueuedClientLines) {
  auto r = record("smtpd",
                  "D92DCA7652D: client=mail.example.net[192.0.2.25]:25, sasl_method=PLAIN, "
                  "sasl_username=alice");
  EXPECT_EQ(r.stage, Stage::queued);
  EXPECT_EQ(fields(r), (std::map<std::string, std::string>{{"queue_id", "D92DCA7652D"},
                                                           {"sasl_method", "PLAIN"},
                                                           {"sasl_username", "alice"}}));
}

TEST(PostfixMessage, WarningsAndTls) {
  auto non_smtp = record("smtpd", "warning: non-SMTP command from x[127.0.0.1]: GET / HTTP/1.0");
  EXPECT_EQ(non_smtp.stage, Stage::non_smtp);
  EXPECT_EQ(non_smtp.argument, "GET / HTTP/1.0");
  auto illegal = record("smtpd",
                        "warning: Illegal address syntax from x[127.0.0.1] in MAIL command: "
                        "<a b@example.com>");
  EXPECT_EQ(illegal.stage, Stage::illegal);
  EXPECT_EQ(fields(illegal).at("command"), "MAIL");
  EXPECT_EQ(illegal.argument, "<a b@example.com>");
  auto tls = record("smtpd",
                    "Anonymous TLS connection established from x[127.0.0.1]:5: TLSv1.3 with "
                    "cipher TLS_AES_256_GCM_SHA384 (256/256 bits)");
  EXPECT_EQ(tls.stage, Stage::tls);
  EXPECT_EQ(fields(tls), (std::map<std::string, std::string>{
                             {"trust", "Anonymous"}, {"tls_version", "TLSv1.3"},
                             {"cipher", "TLS_AES_256_GCM_SHA384"}}));
}

TEST(PostfixMessage, PostscreenVerdicts) {
  auto pregreet = record("postscreen",
                         "PREGREET 20 after 0 from [127.0.0.1]:52170: EHLO eager.example\\r\\n");
  EXPECT_EQ(pregreet.stage, Stage::screen);
  EXPECT_EQ(fields(pregreet), (std::map<std::string, std::string>{{"verdict", "PREGREET"},
                                                                  {"detail", "20 after 0"},
                                                                  {"helo", "eager.example"}}));
  EXPECT_EQ(pregreet.client.port, 52170);
  EXPECT_EQ(pregreet.argument, "EHLO eager.example\\r\\n");
  auto pipelining = record("postscreen",
                           "COMMAND PIPELINING from [127.0.0.1]:43196 after EHLO: MAIL FROM:<a>");
  EXPECT_EQ(fields(pipelining).at("verdict"), "COMMAND PIPELINING");
  EXPECT_EQ(pipelining.argument, "after EHLO: MAIL FROM:<a>");
  EXPECT_EQ(fields(record("postscreen", "PASS NEW [192.0.2.1]:25")).at("verdict"), "PASS NEW");
  EXPECT_EQ(fields(record("postscreen", "DNSBL rank 3 for [192.0.2.1]:25")).at("detail"), "rank 3");
  auto hangup = record("postscreen",
                       "HANGUP after 0.5 from [127.0.0.1]:39064 in tests before SMTP handshake");
  EXPECT_EQ(fields(hangup).at("verdict"), "HANGUP");
  EXPECT_EQ(hangup.stage, Stage::close);  // postscreen ended the connection itself
}

TEST(PostfixMessage, PostscreenConnectOpensAndItsEndsClose) {
  auto connect = record("postscreen", "CONNECT from [198.51.100.7]:54810 to [192.0.2.181]:25");
  EXPECT_EQ(connect.stage, Stage::connect);
  EXPECT_EQ(connect.client.name, "");
  EXPECT_EQ(connect.client.addr, "198.51.100.7");
  EXPECT_EQ(connect.client.port, 54810);
  EXPECT_EQ(fields(connect), (std::map<std::string, std::string>{{"server_addr", "192.0.2.181"},
                                                                 {"server_port", "25"}}));
  auto v6 = record("postscreen", "CONNECT from [2001:db8::7]:41000 to [2001:db8::1]:25");
  EXPECT_EQ(v6.client.addr, "2001:db8::7");
  EXPECT_EQ(fields(v6).at("server_addr"), "2001:db8::1");
  for (const char* ending :
       {"DISCONNECT [198.51.100.7]:54810", "HANGUP after 3.1 from [198.51.100.7]:54810 in tests after SMTP handshake",
        "COMMAND COUNT LIMIT from [198.51.100.7]:54810 after RCPT",
        "COMMAND TIME LIMIT from [198.51.100.7]:54810 after DATA"}) {
    auto r = record("postscreen", ending);
    EXPECT_EQ(r.stage, Stage::close) << ending;
    EXPECT_EQ(r.client.port, 54810) << ending;
  }
  for (const char* going_on :
       {"PASS NEW [198.51.100.7]:54810", "PASS OLD [198.51.100.7]:54810",
        "WHITELISTED [198.51.100.7]:54810", "DNSBL rank 3 for [198.51.100.7]:54810",
        "PREGREET 11 after 0.11 from [198.51.100.7]:54810: EHLO ylmf-pc\\r\\n",
        "COMMAND PIPELINING from [198.51.100.7]:54810 after EHLO: QUIT\\r\\n"}) {
    EXPECT_EQ(record("postscreen", going_on).stage, Stage::screen) << going_on;
  }
}

TEST(PostfixMessage, PostscreenPayloadsNameTheHelo) {
  auto helo = [](std::string_view message) {
    const auto f = fields(record("postscreen", message));
    const auto found = f.find("helo");
    return found == f.end() ? std::string("(none)") : found->second;
  };
  EXPECT_EQ(helo("PREGREET 11 after 0.11 from [203.0.113.5]:1234: EHLO ylmf-pc\\r\\n"), "ylmf-pc");
  EXPECT_EQ(helo("PREGREET 9 after 0 from [203.0.113.5]:1234: helo  x.example\\r\\n"), "x.example");
  EXPECT_EQ(helo("PREGREET 7 after 0 from [203.0.113.5]:1234: EHLO bare"), "bare");
  EXPECT_EQ(helo("COMMAND PIPELINING from [203.0.113.5]:1234 after CONNECT: EHLO pipe.example\\r\\nMAIL"),
            "pipe.example");
  EXPECT_EQ(helo("BARE NEWLINE from [203.0.113.5]:1234 after EHLO: EHLO nl.example\\n"), "nl.example");
  // Not a greeting, or one with no name: no HELO.
  EXPECT_EQ(helo("PREGREET 16 after 0 from [203.0.113.5]:1234: GET / HTTP/1.1\\r\\n"), "(none)");
  EXPECT_EQ(helo("PREGREET 6 after 0 from [203.0.113.5]:1234: EHLO \\r\\n"), "(none)");
  EXPECT_EQ(helo("PREGREET 4 after 0 from [203.0.113.5]:1234: EHLO"), "(none)");
  EXPECT_EQ(helo("COMMAND PIPELINING from [203.0.113.5]:1234 after EHLO: QUIT\\r\\n"), "(none)");
}

// The shapes below are the real logs' (tests/fixtures/logs/real) and the
// wording of Postfix's smtpd_sasl_glue.c, tls_server.c, cleanup_message.c
// (cleanup_act_log) and qmgr_message.c.
TEST(PostfixMessage, SaslFailuresAreRejectsOfAuth) {
  auto r = record("smtpd",
                  "warning: unknown[188.126.223.106]: SASL LOGIN authentication failed: "
                  "Invalid authentication mechanism");
  EXPECT_EQ(r.stage, Stage::reject);
  EXPECT_EQ(r.client.addr, "188.126.223.106");
  EXPECT_EQ(r.client.name, "unknown");
  EXPECT_EQ(r.argument, "Invalid authentication mechanism");
  EXPECT_EQ(fields(r), (std::map<std::string, std::string>{{"action", "auth-failed"},
                                                          {"command", "AUTH"},
                                                          {"sasl_method", "LOGIN"},
                                                          {"outcome", "failed"}}));
  r = record("smtpd",
             "warning: unknown[119.207.78.191]: SASL LOGIN authentication failed: (reason "
             "unavailable), sasl_username=admin@domain.tld");
  EXPECT_EQ(r.argument, "(reason unavailable)");
  EXPECT_EQ(fields(r).at("sasl_username"), "admin@domain.tld");
  // The user name is the client's: a planted suffix stays in it.
  r = record("smtpd",
             "warning: x[2001:db8::1]:4711: SASL PLAIN authentication failed: authentication "
             "failure, sasl_username=a, sasl_username=b");
  EXPECT_EQ(r.client.addr, "2001:db8::1");
  EXPECT_EQ(r.client.port, 4711);
  EXPECT_EQ(fields(r).at("sasl_method"), "PLAIN");
  EXPECT_EQ(fields(r).at("sasl_username"), "a, sasl_username=b");
  EXPECT_EQ(r.argument, "authentication failure");
  r = record("smtpd", "warning: unknown[192.0.2.7]: SASL login authentication failed");
  EXPECT_EQ(fields(r).at("sasl_method"), "login");
  EXPECT_TRUE(r.argument.empty());
}

TEST(PostfixMessage, TlsFailures) {
  auto r = record("smtpd", "SSL_accept error from mrpickles.keekles.org[208.38.136.12]: "
                           "Connection reset by peer");
  EXPECT_EQ(r.stage, Stage::tls);
  EXPECT_EQ(r.client.name, "mrpickles.keekles.org");
  EXPECT_EQ(r.argument, "Connection reset by peer");
  EXPECT_EQ(fields(r), (std::map<std::string, std::string>{{"outcome", "failed"}}));
  EXPECT_EQ(record("smtpd", "SSL_accept error from unknown[192.0.2.1]:25: -1").argument, "-1");
  r = record("smtpd", "lost connection after STARTTLS from unknown[192.0.2.1]");
  EXPECT_EQ(r.stage, Stage::lost);
  EXPECT_EQ(fields(r), (std::map<std::string, std::string>{{"after", "STARTTLS"},
                                                          {"tls", "failed"}}));
  EXPECT_FALSE(fields(record("smtpd", "lost connection after EHLO from x[192.0.2.1]"))
                   .contains("tls"));
}

TEST(PostfixMessage, CleanupContentRejects) {
  auto r = record("cleanup",
                  "7D50B3EC2B: reject: header Received: from mail1.jobdivabk.com "
                  "(smtp.jobdivabk.com [65.254.18.118])??by aipiggybot.io (Postfix) with ESMTP id "
                  "7D50B3EC2B??for <mike@cwstat.com>; Mon, 12 Feb 2018 11:05:36 -0500 (EST) from "
                  "smtp.jobdivabk.com[65.254.18.118]; from=<ravi@example.com> to=<mike@cwstat.com> "
                  "proto=ESMTP helo=<mail1.jobdivabk.com>: 5.7.1 Looks like spam to me.  Try x");
  EXPECT_EQ(r.stage, Stage::reject);
  EXPECT_EQ(r.client.addr, "65.254.18.118");
  auto f = fields(r);
  EXPECT_EQ(f.at("reply"), "5.7.1 Looks like spam to me.  Try x");
  EXPECT_EQ(f.at("action"), "reject");
  EXPECT_EQ(f.at("queue_id"), "7D50B3EC2B");
  EXPECT_EQ(f.at("command"), "header");
  EXPECT_EQ(f.at("dsn"), "5.7.1");
  EXPECT_EQ(f.at("from"), "ravi@example.com");
  EXPECT_EQ(f.at("to"), "mike@cwstat.com");
  EXPECT_EQ(f.at("helo"), "mail1.jobdivabk.com");
  EXPECT_TRUE(r.argument.starts_with("Received: from mail1.jobdivabk.com (smtp"));
  EXPECT_TRUE(r.argument.ends_with("-0500 (EST)"));
  // A body rule, a null sender, no helo; a locally submitted message.
  r = record("cleanup", "4B1C2D3E4F: reject: body click here from x[192.0.2.9]:1025; from=<> "
                        "to=<u@example.org> proto=SMTP: 5.7.1 no thanks");
  f = fields(r);
  EXPECT_EQ(f.at("command"), "body");
  EXPECT_EQ(r.argument, "click here");
  EXPECT_EQ(f.at("from"), "");
  EXPECT_EQ(f.at("proto"), "SMTP");
  EXPECT_FALSE(f.contains("helo"));
  EXPECT_EQ(r.client.port, 1025);
  EXPECT_EQ(f.at("reply"), "5.7.1 no thanks");
  // Details planted in the content: the first client that fits ends it.
  r = record("cleanup", "4B1C2D3E4F: reject: header X: a from b[192.0.2.1]; from=<x> from "
                        "c[192.0.2.2]; from=<s> to=<t>: 5.7.1 no");
  EXPECT_EQ(r.argument, "X: a");
  EXPECT_EQ(r.client.addr, "192.0.2.1");
  EXPECT_EQ(fields(r).at("reply"), "5.7.1 no");
  r = record("cleanup", "4B1C2D3E4F: discard: header Subject: x from local; from=<root>: 2.0.0 ok");
  EXPECT_EQ(fields(r).at("action"), "discard");
  EXPECT_TRUE(r.client.addr.empty());
  // A milter run by cleanup: smtpd's reject layout.
  r = record("cleanup", "A1B2C3D4E5: milter-reject: END-OF-MESSAGE from localhost[127.0.0.1]: "
                        "5.7.1 Command rejected; from=<a@b.example> to=<c@d.example> "
                        "proto=ESMTP helo=<client.example>");
  f = fields(r);
  EXPECT_EQ(f.at("action"), "milter-reject");
  EXPECT_EQ(f.at("command"), "END-OF-MESSAGE");
  EXPECT_EQ(f.at("queue_id"), "A1B2C3D4E5");
  EXPECT_EQ(f.at("from"), "a@b.example");
  EXPECT_EQ(r.argument, "5.7.1 Command rejected");
  EXPECT_EQ(parse_postfix_message("cleanup", "A1B2C3D4E5: reject: header x without a client").kind,
            MessageKind::malformed);
}

TEST(PostfixMessage, QmgrSenders) {
  auto r = record("qmgr", "A0320E00C3: from=<a@example.com>, size=142646, nrcpt=1 (queue active)");
  EXPECT_EQ(r.stage, Stage::mail);
  EXPECT_EQ(fields(r), (std::map<std::string, std::string>{{"queue_id", "A0320E00C3"},
                                                          {"from", "a@example.com"},
                                                          {"size", "142646"},
                                                          {"nrcpt", "1"}}));
  EXPECT_EQ(fields(record("qmgr", "7E1AEC2C388XXXX: from=<>, size=3, nrcpt=2 (queue active)"))
                .at("from"),
            "");
  EXPECT_EQ(fields(record("qmgr", "A0320E00C3: from=<\"a>, size=1\"@x>, size=9, nrcpt=1 "
                                  "(queue active)"))
                .at("from"),
            "\"a>, size=1\"@x");
}

TEST(PeerNameCheck, TheFourWarnings) {
  auto c = parse_name_check("warning: hostname cm-188.126.223.106.getinternet.no does not resolve "
                            "to address 188.126.223.106: Name or service not known");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->name, "cm-188.126.223.106.getinternet.no");
  EXPECT_EQ(c->addr, "188.126.223.106");
  EXPECT_EQ(c->check, "unresolved");
  EXPECT_EQ(c->reason, "Name or service not known");
  c = parse_name_check("warning: hostname mail.example.com does not resolve to address 2001:db8::5");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->addr, "2001:db8::5");
  EXPECT_EQ(c->check, "mismatch");
  EXPECT_TRUE(c->reason.empty());
  c = parse_name_check("warning: 192.0.2.8: address not listed for hostname host.example.net");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->addr, "192.0.2.8");
  EXPECT_EQ(c->name, "host.example.net");
  EXPECT_EQ(c->check, "mismatch");
  c = parse_name_check("warning: 2001:db8::8: hostname h.example verification failed: "
                       "Host not found, try again");
  ASSERT_TRUE(c);
  EXPECT_EQ(c->addr, "2001:db8::8");
  EXPECT_EQ(c->name, "h.example");
  EXPECT_EQ(c->check, "unresolved");
  EXPECT_EQ(c->reason, "Host not found, try again");
  for (const char* other :
       {"warning: unknown[192.0.2.1]: SASL LOGIN authentication failed: x",
        "warning: 118.18.254.65.list.dsbl.org: RBL lookup error: Host not found",
        "warning: hostname  does not resolve to address 192.0.2.1", "connect from x[192.0.2.1]",
        "warning: hostname a b does not resolve to address 192.0.2.1",
        "warning: 192.0.2.8: address not listed for hostname "}) {
    EXPECT_FALSE(parse_name_check(other)) << other;
  }
}

SyslogLine smtpd_line(std::int64_t pid, std::int64_t time_us) {
  SyslogLine line;
  line.host = "mx";
  line.daemon = "smtpd";
  line.pid = pid;
  line.time_us = time_us;
  return line;
}

Event connect_event(std::string addr) {
  Event e;
  e.stage = Stage::connect;
  e.add("client_addr", std::move(addr));
  return e;
}

TEST(PeerNameCheck, GoesToTheNextConnectOfItsProcessAndAddress) {
  PeerNameCheck checks;
  const NameCheck check{"192.0.2.8", "ptr.example", "unresolved", "Name or service not known"};
  checks.remember(smtpd_line(7, 1'000'000), check, 1024);
  Event other_process = connect_event("192.0.2.8");
  checks.attach(smtpd_line(8, 1'000'000), other_process);
  EXPECT_FALSE(other_process.attribute("ptr_check"));
  Event e = connect_event("192.0.2.8");
  checks.attach(smtpd_line(7, 1'000'000), e);
  EXPECT_EQ(e.attribute("client_ptr"), "ptr.example");
  EXPECT_EQ(e.attribute("ptr_check"), "unresolved");
  EXPECT_EQ(e.attribute("ptr_check_reason"), "Name or service not known");
  Event next = connect_event("192.0.2.8");  // used once
  checks.attach(smtpd_line(7, 2'000'000), next);
  EXPECT_FALSE(next.attribute("client_ptr"));
  // Another address, or too late: not this connect's, and forgotten.
  checks.remember(smtpd_line(7, 1'000'000), check, 1024);
  Event elsewhere = connect_event("192.0.2.9");
  checks.attach(smtpd_line(7, 1'000'000), elsewhere);
  EXPECT_FALSE(elsewhere.attribute("ptr_check"));
  checks.remember(smtpd_line(7, 1'000'000), check, 1024);
  Event late = connect_event("192.0.2.8");
  checks.attach(smtpd_line(7, 1'000'000 + PeerNameCheck::window_us + 1), late);
  EXPECT_FALSE(late.attribute("ptr_check"));
  // Bounded values.
  const std::string long_name(5000, 'n');
  checks.remember(smtpd_line(7, 1'000'000), NameCheck{"192.0.2.8", long_name, "mismatch", ""}, 64);
  Event bounded_event = connect_event("192.0.2.8");
  checks.attach(smtpd_line(7, 1'000'000), bounded_event);
  EXPECT_LE(bounded_event.attribute("client_ptr")->size(), 64u);
  EXPECT_FALSE(bounded_event.attribute("ptr_check_reason"));
}

Event queued_event(std::string stream, std::string queue_id) {
  Event e;
  e.stage = Stage::queued;
  e.stream = std::move(stream);
  e.add("client_name", "mail.example");
  e.add("client_addr", "192.0.2.8");
  e.add("client_port", "4711");
  e.add("queue_id", std::move(queue_id));
  return e;
}

LogRecord qmgr(const std::string& message) { return parse_postfix_message("qmgr", message).record; }

TEST(QueueJoin, CleanupJoinsTheSessionAndQmgrNamesItsSender) {
  QueueJoin queues;
  std::vector<Event> pending;
  pending.push_back(queued_event("log:mx:7", "AAAAA11111"));
  queues.remember("mx", pending.back(), 0);
  Event reject;
  reject.stream = "log:mx:99";
  reject.add("client_name", "x");
  reject.add("client_addr", "203.0.113.1");
  EXPECT_FALSE(queues.join("other-host", "AAAAA11111", reject));
  EXPECT_FALSE(queues.join("mx", "BBBBB22222", reject));
  ASSERT_TRUE(queues.join("mx", "AAAAA11111", reject));
  EXPECT_EQ(reject.stream, "log:mx:7");
  EXPECT_EQ(reject.attribute("client_addr"), "192.0.2.8");
  EXPECT_EQ(reject.attribute("client_name"), "mail.example");
  EXPECT_EQ(reject.attribute("client_port"), "4711");

  const std::string line = "AAAAA11111: from=<>, size=2048, nrcpt=3 (queue active)";
  EXPECT_FALSE(queues.add_sender("other-host", qmgr(line), pending, 1024));
  ASSERT_TRUE(queues.add_sender("mx", qmgr(line), pending, 1024));
  EXPECT_EQ(pending[0].attribute("from"), "");
  EXPECT_EQ(pending[0].attribute("size"), "2048");
  EXPECT_FALSE(pending[0].attribute("nrcpt"));  // the disconnect's rcpt= says it
  EXPECT_FALSE(queues.add_sender("mx", qmgr(line), pending, 1024));  // a retry: once is enough
  EXPECT_EQ(pending[0].attributes.size(), 6u);
}

TEST(QueueJoin, ACommittedQueuedEventIsNotChanged) {
  QueueJoin queues;
  std::vector<Event> pending{queued_event("log:mx:7", "AAAAA11111")};
  queues.remember("mx", pending[0], 0);
  queues.committed();
  pending = {queued_event("log:mx:8", "CCCCC33333")};
  EXPECT_FALSE(queues.add_sender(
      "mx", qmgr("AAAAA11111: from=<a@b>, size=1, nrcpt=1 (queue active)"), pending, 1024));
  EXPECT_FALSE(pending[0].attribute("from"));
}

TEST(QueueJoin, RemembersABoundedNumberOldestForgottenFirst) {
  QueueJoin queues;
  for (std::size_t i = 0; i <= QueueJoin::max_remembered; ++i) {
    queues.remember("mx", queued_event("log:mx:1", "Q" + std::to_string(100000 + i)), i);
  }
  Event e;
  EXPECT_FALSE(queues.join("mx", "Q100000", e));
  EXPECT_TRUE(queues.join("mx", "Q100001", e));
  EXPECT_TRUE(queues.join("mx", "Q" + std::to_string(100000 + QueueJoin::max_remembered), e));
}

TEST(PostfixMessage, OtherMessagesAreSkipped) {
  for (auto [daemon, message] : std::initializer_list<std::pair<const char*, const char*>>{
           {"smtpd", "warning: hostname x does not resolve to address 192.0.2.1"},
           {"smtpd", "proxy-accept: END-OF-MESSAGE: 250 2.0.0 Ok"},
           {"smtpd", "4F3A1B2C3D: proxy-accept: END-OF-MESSAGE: 250 2.0.0 Ok: queued as X"},
           {"qmgr", "A0320E00C3: removed"},
           {"qmgr", "A0320E00C3: from=<a@example.com>, status=expired, returned to sender"},
           {"cleanup", "7D830C2C10: message-id=<x@example.com>"},
           {"cleanup", "7D830C2C10: info: header client-id: 1 from localhost[127.0.0.1]; "
                       "from=<a@b> to=<c@d> proto=ESMTP helo=<h>"},
           {"cleanup", "7D830C2C10: redirect: header Subject: x from localhost[127.0.0.1]; "
                       "from=<a@b> to=<c@d> proto=ESMTP helo=<h>: x@y"},
           {"smtpd", "warning: unknown[192.0.2.1]: SASL LOGIN authentication aborted"},
           {"smtpd", "warning: SASL authentication failure: Password verification failed"},
           {"postscreen", "cache btree:/var/lib/postfix/psc_cache full cleanup"}}) {
    EXPECT_EQ(parse_postfix_message(daemon, message).kind, MessageKind::skipped) << message;
  }
}

TEST(PostfixMessage, BrokenShapesAreMalformed) {
  for (const char* message :
       {"connect from nobrackets", "disconnect from x[1.2.3.4] garbage", "NOQUEUE: reject: Unsupported",
        "lost connection after RCPT (12 bytes from x[1.2.3.4]", "connect from x[1.2.3.4]:99999",
        "connect from x[]"}) {
    EXPECT_EQ(parse_postfix_message("smtpd", message).kind, MessageKind::malformed) << message;
  }
}

TEST(PostfixMessage, HostileTextStaysDataAndIsBounded) {
  const std::string text = std::string("GET /\x1b[2J\xff") + '\0' + " HTTP/1.0";
  const std::string message = "warning: non-SMTP command from x[192.0.2.1]: " + text;
  const ParsedMessage parsed = parse_postfix_message("smtpd", message);  // views into `message`
  // The text keeps its raw bytes; storage keeps them and printing escapes them.
  ASSERT_EQ(parsed.kind, MessageKind::record);
  EXPECT_EQ(parsed.record.argument, text);
  const std::string long_line = "disconnect from x[192.0.2.1] " + std::string(100000, 'a') + "=1";
  EXPECT_EQ(parse_postfix_message("smtpd", long_line).record.fields[0].value, "1");
  std::string many = "disconnect from x[192.0.2.1]";
  for (int i = 0; i < 100; ++i) many += " c" + std::to_string(i) + "=1";
  EXPECT_EQ(parse_postfix_message("smtpd", many).record.field_count, 32u);  // bounded
}

}  // namespace
}  // namespace smtpscope::ingest
