#include "client_timing.h"

#include <gtest/gtest.h>

namespace smtpscope::analysis {
namespace {

constexpr std::int64_t second = 1'000'000;

TEST(ClientTiming, AMonitorEveryMinuteIsRegular) {
  // connect from ... at :00, :60, :121, :180 ... (whole-second log stamps)
  std::vector<std::int64_t> connects;
  for (int i = 0; i < 30; ++i) connects.push_back((1'518'000'000 + i * 60 + (i % 3 == 1)) * second);
  const ClientTiming t = client_timing(connects);
  ASSERT_TRUE(t.regular_every_s.has_value());
  EXPECT_NEAR(*t.regular_every_s, 60, 1);
  EXPECT_EQ(t.burst, 1);
  EXPECT_EQ(t.describe(), "every ~60 s");
}

TEST(ClientTiming, AnMtaRetryingOnItsQueueScheduleHasNoFixedInterval) {
  // Postfix: 5 min, then doubling up to 4000 s
  std::vector<std::int64_t> connects = {0, 300, 900, 2100, 4500, 8500, 12500};
  for (auto& c : connects) c *= second;
  EXPECT_FALSE(client_timing(connects).regular_every_s.has_value());
}

TEST(ClientTiming, TwentyParallelConnectionsAreABurst) {
  std::vector<std::int64_t> connects;
  for (int i = 0; i < 20; ++i) connects.push_back(100 * second + i * 1000);  // one stamp
  connects.push_back(101 * second);  // the next second: not within 1 s
  connects.push_back(5000 * second);
  const ClientTiming t = client_timing(connects);
  EXPECT_EQ(t.burst, 20);
  EXPECT_FALSE(t.regular_every_s.has_value());
  EXPECT_EQ(t.describe(), "20 connections in 1 s");
}

TEST(ClientTiming, FewSessionsSayNothing) {
  EXPECT_EQ(client_timing({0, 60 * second, 120 * second}).describe(), "");
  EXPECT_EQ(client_timing({}).describe(), "");
}

}  // namespace
}  // namespace smtpscope::analysis
