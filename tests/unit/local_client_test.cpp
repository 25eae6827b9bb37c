#include "local_client.h"

#include <gtest/gtest.h>

namespace smtpscope::analysis {
namespace {

SessionRecord from(std::string addr, std::string program, std::string counters = "") {
  SessionRecord s;
  s.client_addr = std::move(addr);
  s.events.push_back({"log", "connect", 0, std::nullopt, "",
                      R"({"client_addr":"x","program":")" + program + R"("})"});
  s.events.push_back({"log", "close", 1, std::nullopt, "",
                      R"({"program":")" + program + R"(","ehlo":"1")" + counters + "}"});
  return s;
}

// Issue 14 item 1: the content filter's reinjection from localhost was
// listed (and ranked) as a client.
TEST(LocalClient, ReinjectionFromLoopbackIsLocal) {
  // modoboa fixture: disconnect from localhost[127.0.0.1] ehlo=1 xforward=1 ...
  EXPECT_TRUE(is_local_reinjection(from("127.0.0.1", "postfix/smtpd", R"(,"xforward":"1")")));
  EXPECT_TRUE(is_local_reinjection(from("::1", "postfix/10025/smtpd")));
  EXPECT_TRUE(is_local_reinjection(from("127.0.0.1", "postfix-in/127.0.0.1:10025/smtpd")));
}

TEST(LocalClient, OtherLoopbackOrRemoteClientsAreNot) {
  EXPECT_FALSE(is_local_reinjection(from("127.0.0.1", "postfix/smtpd")));  // a local script
  EXPECT_FALSE(is_local_reinjection(from("127.0.0.2", "postfix/10025/smtpd")));
  EXPECT_FALSE(is_local_reinjection(from("192.0.2.1", "postfix/smtpd", R"(,"xforward":"1")")));
  SessionRecord milter_only;
  milter_only.client_addr = "127.0.0.1";
  milter_only.events.push_back({"milter", "connect", 0, std::nullopt, "", "{}"});
  EXPECT_FALSE(is_local_reinjection(milter_only));
}

TEST(LocalClient, TagsNamingAPort) {
  EXPECT_TRUE(tag_names_a_port("postfix/10025/smtpd"));
  EXPECT_TRUE(tag_names_a_port("postfix/127.0.0.1:10025/smtpd"));
  EXPECT_FALSE(tag_names_a_port("postfix/smtpd"));
  EXPECT_FALSE(tag_names_a_port("postfix/submission/smtpd"));
  EXPECT_FALSE(tag_names_a_port("smtpd"));
  EXPECT_FALSE(tag_names_a_port("/smtpd"));
  EXPECT_FALSE(tag_names_a_port("postfix/:/smtpd"));
}

}  // namespace
}  // namespace smtpscope::analysis
