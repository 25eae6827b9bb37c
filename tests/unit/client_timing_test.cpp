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

// Kept incrementally (a store keeps these sums per client).
TEST(ClientTiming, RunningSumsGiveTheTimingAtEachSession) {
  TimingSums sums;
  for (int i = 0; i < 4; ++i) sums.add((1000 + i * 60) * second);
  EXPECT_FALSE(sums.timing().regular_every_s.has_value());  // 4 sessions: not yet
  EXPECT_EQ(sums.timing().sessions, 4);
  EXPECT_NEAR(*sums.timing().mean_interval_s, 60, 1e-9);
  sums.add(1240 * second);
  ASSERT_TRUE(sums.timing().regular_every_s.has_value());
  EXPECT_NEAR(*sums.timing().regular_every_s, 60, 1e-9);
  EXPECT_EQ(sums.intervals, 4);
  EXPECT_EQ(sums.last_connect_us, 1240 * second);
}

TEST(ClientTiming, AMonitorBackAfterAnOutageIsStillRegular) {
  TimingSums sums;
  for (int i = 0; i < 50; ++i) sums.add((1000 + i * 60) * second);
  for (int i = 0; i < 50; ++i) sums.add((50'000 + i * 60) * second);  // 13 h later
  EXPECT_EQ(sums.pauses, 1);
  EXPECT_EQ(sums.timing().describe(), "every ~60 s");
}

TEST(ClientTiming, ABucketOfSessionsCountsAsThatManyAtItsStart) {
  TimingSums bucket, one_by_one;
  bucket.add(100 * second, 12);
  for (int i = 0; i < 12; ++i) one_by_one.add(100 * second);
  EXPECT_EQ(bucket.sessions, 12);
  EXPECT_EQ(bucket.burst_max, 12);
  EXPECT_EQ(bucket.intervals, one_by_one.intervals);
  EXPECT_EQ(bucket.timing().describe(), one_by_one.timing().describe());
  EXPECT_EQ(bucket.timing().describe(), "12 connections in 1 s");
}

}  // namespace
}  // namespace smtpscope::analysis
