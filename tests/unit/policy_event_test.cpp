#include "policy_event.h"

#include <gtest/gtest.h>

namespace smtpscope::policy {
namespace {

TEST(Instance, ParsesPostfixsFormat) {
  auto instance = parse_instance("acf.6b03a7b1.926b8.1");
  ASSERT_TRUE(instance);
  EXPECT_EQ(instance->smtpd_pid, 0xacf);
  EXPECT_EQ(instance->transaction, 2u);  // seqno 1 is the second transaction
  EXPECT_EQ(parse_instance("64a.6b03a76b.d4dad.0")->transaction, 1u);
}

TEST(Instance, RejectsMalformedText) {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "x.2.3.4", "1..3.4", "1.2.3.", "1.2.3.g"}) {
    EXPECT_FALSE(parse_instance(bad)) << bad;
  }
}

TEST(PolicyEvent, MapsStatesToStages) {
  EXPECT_EQ(stage_of("CONNECT"), Stage::connect);
  EXPECT_EQ(stage_of("EHLO"), Stage::helo);
  EXPECT_EQ(stage_of("HELO"), Stage::helo);
  EXPECT_EQ(stage_of("MAIL"), Stage::mail);
  EXPECT_EQ(stage_of("RCPT"), Stage::rcpt);
  EXPECT_EQ(stage_of("DATA"), Stage::data);
  EXPECT_EQ(stage_of("END-OF-MESSAGE"), Stage::eom);
  EXPECT_EQ(stage_of("VRFY"), Stage::vrfy);
  EXPECT_EQ(stage_of("ETRN"), Stage::etrn);
  EXPECT_EQ(stage_of("SOMETHING"), Stage::unknown);
}

TEST(PolicyEvent, KeepsEveryAttributeBoundedAndTheTransaction) {
  Request request;
  request.attributes = {{"request", "smtpd_access_policy"},
                        {"protocol_state", "RCPT"},
                        {"client_address", "192.0.2.7"},
                        {"recipient", std::string(40, 'r')},
                        {"x_unknown_future", "kept"},
                        {"sasl_method", ""},
                        {"instance", "1f4.6b03a76b.d4dad.2"}};
  const Event e = to_event(std::move(request), "policy:1:1", 42, 16);
  EXPECT_EQ(e.source, Source::policy);
  EXPECT_EQ(e.stage, Stage::rcpt);
  EXPECT_EQ(e.time_us, 42);
  EXPECT_EQ(e.stream, "policy:1:1");
  EXPECT_EQ(e.transaction, 3u);
  EXPECT_EQ(e.argument, std::string(16, 'r'));
  EXPECT_EQ(e.attribute("x_unknown_future"), "kept");
  EXPECT_EQ(e.attribute("smtpd_pid"), "500");
  EXPECT_FALSE(e.attribute("request"));
  EXPECT_FALSE(e.attribute("sasl_method"));  // empty: Postfix had no value
}

TEST(PolicyEvent, NoInstanceMeansNoTransaction) {
  Request request;
  request.attributes = {{"protocol_state", "CONNECT"}, {"instance", ""}};
  EXPECT_EQ(to_event(std::move(request), "s", 0, 100).transaction, 0u);
}

}  // namespace
}  // namespace smtpscope::policy
