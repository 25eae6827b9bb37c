#include "postfix_message.h"

#include <gtest/gtest.h>

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
  const auto best_time_to_parse = [](const std::string& line) {
    double best = 1e9;
    for (int run = 0; run < 3; ++run) {
      const auto started = std::chrono::steady_clock::now();
      EXPECT_EQ(parse_postfix_message("smtpd", line).kind, MessageKind::record);
      best = std::min(
          best, std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
    }
    return std::max(best, 1e-6);
  };
  const double small = best_time_to_parse(hostile_line(10000));
  const double large = best_time_to_parse(hostile_line(100000));
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

TEST(PostfixMessage, OtherMessagesAreSkipped) {
  for (auto [daemon, message] : std::initializer_list<std::pair<const char*, const char*>>{
           {"smtpd", "warning: hostname x does not resolve to address 192.0.2.1"},
           {"smtpd", "proxy-accept: END-OF-MESSAGE: 250 2.0.0 Ok"},
           {"smtpd", "4F3A1B2C3D: proxy-accept: END-OF-MESSAGE: 250 2.0.0 Ok: queued as X"},
           {"qmgr", "A0320E00C3: from=<a@example.com>, size=142646, nrcpt=1 (queue active)"},
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
