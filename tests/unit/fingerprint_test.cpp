#include "fingerprint.h"

#include <gtest/gtest.h>

namespace smtpscope::analysis {
namespace {

// Sessions as the sensors record them: milter events with the ESMTP
// arguments of MAIL, the policy server's protocol, the log's counters.
struct Session {
  SessionRecord s;
  explicit Session(std::string protocol = "ESMTP") {
    s.client_addr = "192.0.2.9";
    s.protocol = std::move(protocol);
    event("milter", "connect").event("milter", "helo", "client.example.org");
  }
  Session& event(std::string source, std::string stage, std::string argument = "",
                 std::string attributes = "{}") {
    s.events.push_back(EventRecord{std::move(source), std::move(stage), s.connect_us, std::nullopt,
                                   std::move(argument), std::move(attributes)});
    return *this;
  }
  Session& mail(const std::string& esmtp) {
    return event("milter", "mail", "<a@example.org>", R"({"esmtp":")" + esmtp + R"("})");
  }
  Fingerprint fingerprint() const { return fingerprint_of(s, facts_of(s)); }
};

// Only the log: "connect from", then "disconnect from ... COUNTERS".
Fingerprint logged(const std::string& counters, const std::string& lost_after = "") {
  SessionRecord s;
  s.client_addr = "198.51.100.4";
  s.events.push_back(EventRecord{"log", "connect", 0, std::nullopt, "", "{}"});
  if (!lost_after.empty()) {
    s.events.push_back(
        EventRecord{"log", "lost", 0, std::nullopt, "", R"({"after":")" + lost_after + R"("})"});
  }
  s.events.push_back(EventRecord{"log", "close", 0, std::nullopt, "", counters});
  return fingerprint_of(s, facts_of(s));
}

std::string feature(const Fingerprint& fp, const std::string& name) {
  for (const auto& [n, v] : fp.features) {
    if (n == name) return v;
  }
  for (const auto& [n, v] : fp.later) {
    if (n == name) return v;
  }
  return "(absent)";
}

TEST(Fingerprint, EsmtpKeywordsCompareWithoutCaseAndTheCaseIsItsOwnTrait) {
  // curl: MAIL FROM:<a@example.org> SIZE=120; Python smtplib: size=120.
  const Fingerprint curl = Session().mail("SIZE=120").fingerprint();
  const Fingerprint smtplib = Session().mail("size=120").fingerprint();
  EXPECT_EQ(feature(curl, "esmtp"), "SIZE");
  EXPECT_EQ(feature(smtplib, "esmtp"), "SIZE");
  EXPECT_EQ(feature(curl, "esmtp_case"), "upper");
  EXPECT_EQ(feature(smtplib, "esmtp_case"), "lower");
  EXPECT_NE(curl.id, smtplib.id);  // two programs, and that is what tells them apart
  // One program, other values: one id.
  EXPECT_EQ(Session().mail("SIZE=99999 BODY=8BITMIME").fingerprint().id,
            Session().mail("BODY=7BIT SIZE=1").fingerprint().id);
}

TEST(Fingerprint, WhatOnlyDataShowsDoesNotSplitAProgram) {
  Session delivered;
  delivered.mail("SIZE=100")
      .event("milter", "rcpt", "<b@example.net>", R"({"rejected":"0"})")
      .event("milter", "data")
      .event("milter", "header", "Thunderbird 115")
      .event("milter", "eom");
  Session rejected;
  rejected.mail("SIZE=100").event("milter", "rcpt", "<c@example.net>", R"({"rejected":"1"})");
  const Fingerprint a = delivered.fingerprint();
  const Fingerprint b = rejected.fingerprint();
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(feature(a, "mailer"), "Thunderbird 115");
  EXPECT_EQ(feature(b, "mailer"), "-");
  EXPECT_NE(a.readable().find("| body=? end=? mailer=Thunderbird 115"), std::string::npos)
      << a.readable();
}

TEST(Fingerprint, TheLogAloneGivesACommandSignature) {
  // postfix/smtps/smtpd: ehlo=1 auth=0/1 commands=1/2, lost connection after AUTH
  const Fingerprint guess = logged(R"({"ehlo":"1","auth":"0/1","commands":"1/2"})", "AUTH");
  EXPECT_EQ(guess.readable(),
            "greeting=EHLO helo=? esmtp=- esmtp_case=- tls=no auth=yes "
            "rset_after_rcpt=no | body=- end=drop mailer=-");
  // The same bot once said QUIT: still one id.
  EXPECT_EQ(guess.id, logged(R"({"ehlo":"1","auth":"0/1","quit":"1","commands":"2/3"})").id);
  // An MTA with STARTTLS, two messages or one, QUIT or a broken link: one id.
  const Fingerprint mta = logged(R"({"ehlo":"2","starttls":"1","mail":"1","rcpt":"1","data":"1",)"
                                 R"("quit":"1","commands":"7"})");
  EXPECT_EQ(feature(mta, "tls"), "yes");
  EXPECT_EQ(feature(mta, "body"), "DATA");
  EXPECT_EQ(mta.id, logged(R"({"ehlo":"2","starttls":"1","mail":"2","rcpt":"3","data":"2",)"
                           R"("rset":"1","commands":"10"})",
                           "DATA")
                        .id);
  EXPECT_NE(mta.id, guess.id);
  // HELO instead of EHLO: another dialect.
  EXPECT_EQ(feature(logged(R"({"helo":"1","mail":"1","rcpt":"0/1","commands":"2/3"})"), "greeting"),
            "HELO");
  // A failed TLS handshake or login is the client trying: its dialect.
  EXPECT_EQ(feature(logged(R"({"ehlo":"1","starttls":"0/1","commands":"1/2"})"), "tls"), "yes");
  EXPECT_EQ(logged(R"({"ehlo":"1","auth":"1","mail":"1","rcpt":"1","data":"1","quit":"1"})").id,
            logged(R"({"ehlo":"1","auth":"0/1","quit":"1"})").id);
  // BDAT: `body` from the counters.
  EXPECT_EQ(feature(logged(R"({"ehlo":"1","mail":"1","rcpt":"1","bdat":"2","quit":"1"})"), "body"),
            "BDAT");
}

TEST(Fingerprint, TheSameTraitFromEitherSensorIsTheSameFeature) {
  // TLS from the milter's macros, or from the log's starttls=1: tls=yes.
  Session milter;
  milter.s.events[1].attributes_json = R"({"{tls_version}":"TLSv1.3"})";
  EXPECT_EQ(feature(milter.fingerprint(), "tls"), "yes");
  EXPECT_EQ(feature(logged(R"({"ehlo":"2","starttls":"1","quit":"1"})"), "tls"), "yes");
}

// SASL failure lines alone (no disconnect counters): auth=0/N is derived
// from them, but it says nothing of the other commands: "?", not "no".
TEST(Fingerprint, CountersDerivedFromSaslFailuresSayOnlyAuth) {
  SessionRecord s;
  s.client_addr = "198.51.100.4";
  s.events.push_back(EventRecord{"log", "reject", 0, std::nullopt, "(reason unavailable)",
                                 R"({"action":"auth-failed","command":"AUTH","sasl_method":"LOGIN"})"});
  const SessionFacts f = facts_of(s);
  ASSERT_TRUE(f.counters_derived);
  const Fingerprint fp = fingerprint_of(s, f);
  EXPECT_EQ(feature(fp, "auth"), "yes");
  EXPECT_EQ(feature(fp, "greeting"), "?");
  EXPECT_EQ(feature(fp, "tls"), "no");
  EXPECT_EQ(feature(fp, "body"), "?");
}

}  // namespace
}  // namespace smtpscope::analysis
