#include "correlation.h"

#include <gtest/gtest.h>

namespace smtpscope::analysis {
namespace {

TEST(Wilson, KnownValues) {
  // 8 of 10: 95% Wilson interval 0.490 .. 0.943 (textbook value).
  auto [low, high] = wilson_interval(8, 10);
  EXPECT_NEAR(low, 0.4902, 0.001);
  EXPECT_NEAR(high, 0.9433, 0.001);
  auto [zero_low, zero_high] = wilson_interval(0, 5);
  EXPECT_DOUBLE_EQ(zero_low, 0.0);
  EXPECT_NEAR(zero_high, 0.4345, 0.001);
  auto [none_low, none_high] = wilson_interval(0, 0);
  EXPECT_EQ(none_low, 0.0);
  EXPECT_EQ(none_high, 1.0);
}

std::vector<Observation> population(int quirky, int quirky_with, int plain, int plain_with) {
  std::vector<Observation> out;
  for (int i = 0; i < quirky; ++i) {
    out.push_back({"fp-a", {"bare-ip"}, i < quirky_with ? std::vector<std::string>{"proxy"}
                                                          : std::vector<std::string>{}});
  }
  for (int i = 0; i < plain; ++i) {
    out.push_back({"fp-b", {}, i < plain_with ? std::vector<std::string>{"proxy"}
                                               : std::vector<std::string>{}});
  }
  return out;
}

const Association& find(const std::vector<Association>& all, const std::string& kind,
                        const std::string& group) {
  for (const auto& a : all) {
    if (a.kind == kind && a.group == group && a.pattern == "proxy") return a;
  }
  throw std::runtime_error("missing association");
}

TEST(Correlation, AStrongAssociationIsSignificant) {
  const auto all = correlate(population(40, 30, 200, 4));
  const auto& quirk = find(all, "helo-quirk", "bare-ip");
  EXPECT_EQ(quirk.group_sessions, 40);
  EXPECT_EQ(quirk.group_with_pattern, 30);
  EXPECT_EQ(quirk.rest_sessions, 200);
  EXPECT_EQ(quirk.rest_with_pattern, 4);
  EXPECT_DOUBLE_EQ(quirk.rate, 0.75);
  EXPECT_DOUBLE_EQ(quirk.rest_rate, 0.02);
  EXPECT_DOUBLE_EQ(quirk.lift, 37.5);
  EXPECT_TRUE(quirk.significant);
  EXPECT_TRUE(all.front().significant);
}

TEST(Correlation, AHandfulOfSessionsIsNotSignificant) {
  // 1 of 2 quirky sessions against 10% of the rest: lift 5, interval too wide.
  const auto all = correlate(population(2, 1, 100, 10));
  const auto& quirk = find(all, "helo-quirk", "bare-ip");
  EXPECT_DOUBLE_EQ(quirk.lift, 5.0);
  EXPECT_FALSE(quirk.significant);
  EXPECT_LT(quirk.low, quirk.rest_rate);
}

}  // namespace
}  // namespace smtpscope::analysis
