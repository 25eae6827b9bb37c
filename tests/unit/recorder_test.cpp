#include "recorder.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "test_support.h"

namespace smtpscope::milter {
namespace {

using smtpscope::testing::FakeClock;
using smtpscope::testing::VectorSink;

class FakeMacros final : public MacroSource {
 public:
  FakeMacros(std::initializer_list<std::pair<const std::string, std::string>> values)
      : values_(values) {}
  std::optional<std::string> get(std::string_view name) const override {
    auto found = values_.find(std::string(name));
    if (found == values_.end()) return std::nullopt;
    return found->second;
  }

 private:
  std::map<std::string, std::string> values_;
};

const FakeMacros no_macros{};

Config counting_config() {
  Config config = default_config();
  config.milter.record_body_size = true;
  return config;
}

class RecorderTest : public ::testing::Test {
 protected:
  explicit RecorderTest(Config config = counting_config())
      : recorder_(std::make_shared<const Config>(std::move(config)), clock_, sink_) {}

  std::unique_ptr<ConnectionContext> connected() {
    auto c = recorder_.new_connection(0);
    recorder_.connect(*c, "mail.example.net", PeerAddress{"192.0.2.25", 40123}, no_macros);
    return c;
  }

  std::optional<std::string> attribute(std::size_t index, std::string_view name) {
    auto value = sink_.events.at(index).attribute(name);
    return value ? std::optional<std::string>(*value) : std::nullopt;
  }

  FakeClock clock_;
  VectorSink sink_;
  Recorder recorder_;
};

TEST_F(RecorderTest, ConnectTakesThePeerAddressAndServerMacros) {
  auto c = recorder_.new_connection(0);
  const FakeMacros macros{{"{daemon_addr}", "198.51.100.1"}, {"{daemon_port}", "25"},
                          {"{client_ptr}", "ptr.example.net"}, {"j", "mx.example.org"}};
  recorder_.connect(*c, "mail.example.net", PeerAddress{"192.0.2.25", 40123}, macros);
  ASSERT_EQ(sink_.events.size(), 1u);
  const Event& e = sink_.events[0];
  EXPECT_EQ(e.stage, Stage::connect);
  EXPECT_EQ(e.source, Source::milter);
  EXPECT_EQ(e.time_us, clock_.now_us());
  EXPECT_EQ(attribute(0, "client_addr"), "192.0.2.25");
  EXPECT_EQ(attribute(0, "client_port"), "40123");
  EXPECT_EQ(attribute(0, "client_name"), "mail.example.net");
  EXPECT_EQ(attribute(0, "client_ptr"), "ptr.example.net");
  EXPECT_EQ(attribute(0, "server_addr"), "198.51.100.1");
  EXPECT_EQ(attribute(0, "server_port"), "25");
  EXPECT_EQ(attribute(0, "j"), "mx.example.org");
}

TEST_F(RecorderTest, AnUnverifiedHostnameIsUnknownAndMacrosFillAMissingPeer) {
  auto c = recorder_.new_connection(0);
  const FakeMacros macros{{"{client_addr}", "192.0.2.9"}, {"{client_port}", "5555"}};
  recorder_.connect(*c, "[192.0.2.9]", PeerAddress{}, macros);
  EXPECT_EQ(attribute(0, "client_name"), "unknown");
  EXPECT_EQ(attribute(0, "client_addr"), "192.0.2.9");
  EXPECT_EQ(attribute(0, "client_port"), "5555");
}

TEST_F(RecorderTest, TransactionsAreNumberedAndEndWithEomOrAbort) {
  auto c = connected();
  recorder_.helo(*c, "ws7.corp.example", no_macros);
  recorder_.mail(*c, {"<clerk@corp.example>", "SIZE=1000", "BODY=8BITMIME"}, no_macros);
  recorder_.rcpt(*c, {"<boss@corp.example>"}, FakeMacros{{"{rcpt_mailer}", "smtp"}});
  recorder_.abort(*c);
  recorder_.mail(*c, {"<clerk@corp.example>"}, no_macros);
  recorder_.rcpt(*c, {"<boss@corp.example>"}, no_macros);
  recorder_.data(*c, FakeMacros{{"i", "4F3A1"}});
  recorder_.body(*c, 100);
  recorder_.body(*c, 20);
  recorder_.end_of_message(*c, FakeMacros{{"i", "4F3A1"}});
  recorder_.close(*c);
  EXPECT_EQ(sink_.stages(), (std::vector<std::string>{"connect", "helo", "mail", "rcpt", "abort",
                                                      "mail", "rcpt", "data", "eom", "close"}));
  std::vector<std::uint32_t> transactions;
  for (const auto& e : sink_.events) transactions.push_back(e.transaction);
  EXPECT_EQ(transactions, (std::vector<std::uint32_t>{0, 0, 1, 1, 1, 2, 2, 2, 2, 0}));
  EXPECT_EQ(attribute(2, "esmtp"), "SIZE=1000 BODY=8BITMIME");
  EXPECT_EQ(attribute(3, "rejected"), "0");
  EXPECT_EQ(attribute(7, "queue_id"), "4F3A1");
  EXPECT_EQ(attribute(8, "queue_id"), "4F3A1");
  EXPECT_EQ(attribute(8, "body_bytes"), "120");
  std::set<std::string> streams;
  for (const auto& e : sink_.events) streams.insert(e.stream);
  EXPECT_EQ(streams.size(), 1u);
}

TEST_F(RecorderTest, ARecipientPostfixRejectedCarriesStatusAndReason) {
  auto c = connected();
  recorder_.mail(*c, {"<a@x.example>"}, no_macros);
  recorder_.rcpt(*c, {"<no@y.example>"},
                 FakeMacros{{"{rcpt_mailer}", "error"}, {"{rcpt_host}", "5.7.1"},
                            {"{rcpt_addr}", "Recipient address rejected: no such user here"}});
  EXPECT_EQ(attribute(2, "rejected"), "1");
  EXPECT_EQ(attribute(2, "status"), "5.7.1");
  EXPECT_EQ(attribute(2, "reason"), "Recipient address rejected: no such user here");
}

TEST_F(RecorderTest, EachConnectionHasItsOwnStream) {
  auto a = connected();
  auto b = connected();
  EXPECT_NE(sink_.events[0].stream, sink_.events[1].stream);
}

TEST_F(RecorderTest, ACloseWithoutConnectRecordsNothing) {
  auto c = recorder_.new_connection(0);
  recorder_.close(*c);
  EXPECT_TRUE(sink_.events.empty());
}

TEST_F(RecorderTest, UnknownCommandsAreRecorded) {
  auto c = connected();
  recorder_.unknown(*c, "XYZZY");
  EXPECT_EQ(sink_.events.back().stage, Stage::unknown);
  EXPECT_EQ(sink_.events.back().argument, "XYZZY");
}

TEST_F(RecorderTest, DropsAreCountedWhenTheSinkRefuses) {
  auto c = connected();
  sink_.refuse = true;
  recorder_.helo(*c, "x", no_macros);
  recorder_.helo(*c, "y", no_macros);
  EXPECT_EQ(recorder_.dropped(), 2u);
}

Config bounded_config() {
  Config config = default_config();
  config.milter.max_recipients = 3;
  config.milter.max_headers = 2;
  config.milter.max_value_bytes = 16;
  config.milter.headers = {"X-Mailer", "User-Agent"};
  return config;
}

class BoundedRecorderTest : public RecorderTest {
 protected:
  BoundedRecorderTest() : RecorderTest(bounded_config()) {}
};

TEST_F(BoundedRecorderTest, RecipientsBeyondTheLimitAreCountedNotRecorded) {
  auto c = connected();
  recorder_.mail(*c, {"<a@x>"}, no_macros);
  for (int i = 0; i < 5; ++i) recorder_.rcpt(*c, {"<r@y>"}, no_macros);  // limit+2
  recorder_.end_of_message(*c, no_macros);
  EXPECT_EQ(sink_.stages(),
            (std::vector<std::string>{"connect", "mail", "rcpt", "rcpt", "rcpt", "eom"}));
  EXPECT_EQ(sink_.events.back().attribute("recipients_not_recorded"), "2");
}

TEST_F(BoundedRecorderTest, OnlyConfiguredHeadersUpToTheLimitAreKept) {
  auto c = connected();
  recorder_.mail(*c, {"<a@x>"}, no_macros);
  recorder_.header(*c, "Subject", "not kept");
  recorder_.header(*c, "x-mailer", "Blat");
  recorder_.header(*c, "User-Agent", "UA");
  recorder_.header(*c, "X-Mailer", "third is over the limit");
  ASSERT_EQ(sink_.stages(), (std::vector<std::string>{"connect", "mail", "header", "header"}));
  EXPECT_EQ(sink_.events[2].argument, "x-mailer: Blat");
  EXPECT_EQ(sink_.events[3].argument, "User-Agent: UA");
}

TEST_F(BoundedRecorderTest, LongClientStringsAreCutAtTheLimit) {
  auto c = connected();
  recorder_.helo(*c, std::string(15, 'h'), no_macros);
  recorder_.helo(*c, std::string(16, 'h'), no_macros);
  recorder_.helo(*c, std::string(17, 'h'), no_macros);
  EXPECT_EQ(sink_.events[1].argument.size(), 15u);
  EXPECT_EQ(sink_.events[2].argument.size(), 16u);
  EXPECT_EQ(sink_.events[3].argument.size(), 16u);
}

}  // namespace
}  // namespace smtpscope::milter
