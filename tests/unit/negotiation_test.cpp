#include "negotiation.h"

#include <gtest/gtest.h>
#include <libmilter/mfapi.h>

namespace smtpscope::milter {
namespace {

constexpr unsigned long postfix_offer = 0x1FFFFF;  // Postfix 3.7, milter_protocol 6

TEST(Negotiation, AsksForRejectedRecipientsAndNoModifications) {
  const Negotiated n = negotiate(0x1FF, postfix_offer, default_config().milter);
  EXPECT_TRUE(n.steps & SMFIP_RCPT_REJ);
  EXPECT_EQ(n.actions, 0u);
}

// Postfix holds no-reply events in its buffer until it next needs a reply,
// which would deliver a whole session at its end: envelope stages reply.
TEST(Negotiation, EnvelopeStagesKeepTheirReplies) {
  const Negotiated n = negotiate(0x1FF, postfix_offer, default_config().milter);
  for (unsigned long flag : {SMFIP_NR_CONN, SMFIP_NR_HELO, SMFIP_NR_MAIL, SMFIP_NR_RCPT,
                             SMFIP_NR_DATA, SMFIP_NR_UNKN}) {
    EXPECT_FALSE(n.steps & flag) << std::hex << flag;
  }
  EXPECT_TRUE(n.steps & SMFIP_NR_HDR);
  EXPECT_TRUE(n.steps & SMFIP_NR_BODY);
  EXPECT_TRUE(n.steps & SMFIP_NOEOH);
  EXPECT_FALSE(n.steps & (SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT |
                          SMFIP_NODATA | SMFIP_NOUNKNOWN));
}

TEST(Negotiation, SkipsTheBodyByDefault) {
  EXPECT_TRUE(negotiate(0, postfix_offer, default_config().milter).steps & SMFIP_NOBODY);
}

TEST(Negotiation, SkipsHeadersAndBodyWhenNotRecorded) {
  Config::Milter config = default_config().milter;
  config.record_body_size = true;
  EXPECT_FALSE(negotiate(0, postfix_offer, config).steps & (SMFIP_NOHDRS | SMFIP_NOBODY));
  config.headers.clear();
  config.record_body_size = false;
  const Negotiated n = negotiate(0, postfix_offer, config);
  EXPECT_TRUE(n.steps & SMFIP_NOHDRS);
  EXPECT_TRUE(n.steps & SMFIP_NOBODY);
}

TEST(Negotiation, NeverAsksForWhatWasNotOffered) {
  const Negotiated n = negotiate(0, SMFIP_RCPT_REJ | SMFIP_NOUNKNOWN, default_config().milter);
  EXPECT_EQ(n.steps, static_cast<unsigned long>(SMFIP_RCPT_REJ));
}

}  // namespace
}  // namespace smtpscope::milter
