#include "anomaly.h"

#include <gtest/gtest.h>

namespace smtpscope::analysis {
namespace {

ClientSessions client(std::string name, int n, std::string fingerprint,
                      std::vector<std::string> quirks, std::vector<std::string> patterns) {
  ClientSessions c{std::move(name), {}};
  for (int i = 0; i < n; ++i) c.sessions.push_back({fingerprint, quirks, patterns});
  return c;
}

const std::map<std::string, double> weights = {{"intercepting-proxy", 1.0},
                                               {"connection-reuse", 0.0}};

TEST(Anomaly, AQuirkyResettingClientOutscoresOrdinaryOnes) {
  std::vector<ClientSessions> clients;
  for (int i = 0; i < 20; ++i) clients.push_back(client("ordinary" + std::to_string(i), 2, "fpA", {}, {}));
  clients.push_back(client("odd", 4, "fpB", {"localhost"}, {"intercepting-proxy"}));
  const auto scores = score_clients(clients, weights);
  EXPECT_EQ(scores.at("ordinary0").score, 0.0);
  const Anomaly& odd = scores.at("odd");
  EXPECT_GT(odd.score, 1.0);
  ASSERT_EQ(odd.reasons.size(), 2u);
  EXPECT_EQ(odd.reasons[0].text, "4 of 4 sessions are intercepting-proxy (others in the population: 0%)");
  EXPECT_EQ(odd.reasons[1].text, "HELO quirk localhost (in 9% of all sessions)");
  EXPECT_GE(odd.reasons[0].weight, odd.reasons[1].weight);
}

TEST(Anomaly, ABehaviourCommonInItsFingerprintGroupIsNotAnomalous) {
  std::vector<ClientSessions> clients;
  for (int i = 0; i < 10; ++i) clients.push_back(client("proxy" + std::to_string(i), 2, "fpP", {}, {"intercepting-proxy"}));
  for (int i = 0; i < 10; ++i) clients.push_back(client("plain" + std::to_string(i), 2, "fpA", {}, {}));
  clients.push_back(client("outlier", 2, "fpA", {}, {"intercepting-proxy"}));
  const auto scores = score_clients(clients, weights);
  // Named, so above the ordinary ones, but far below the same behaviour
  // where its group does not show it.
  EXPECT_GT(scores.at("proxy3").score, scores.at("plain3").score);
  EXPECT_LT(scores.at("proxy3").score * 1.5, scores.at("outlier").score);
  EXPECT_EQ(scores.at("proxy3").reasons.front().text,
            "2 of 2 sessions are intercepting-proxy (others with its fingerprint: 100%)");
}

// Ordinary senders (no pattern, no quirk) score nothing, and every client
// with a named pattern scores more, a benign one (a verification probe,
// weight 0.1) least; volume breaks ties.
TEST(Anomaly, OrdinarySendersRankBelowEveryNamedPattern) {
  const std::map<std::string, double> w = {{"verification-probe", 0.1}, {"scanner", 0.8},
                                           {"auth-guessing", 2.0}};
  std::vector<ClientSessions> clients;
  for (int i = 0; i < 30; ++i) clients.push_back(client("plain" + std::to_string(i), 5, "fpA", {}, {}));
  clients.push_back(client("verifier", 4, "fpV", {}, {"verification-probe"}));
  for (int i = 0; i < 10; ++i) clients.push_back(client("scan" + std::to_string(i), 1, "fpS", {}, {"scanner"}));
  clients.push_back(client("busy-scanner", 20, "fpS", {}, {"scanner"}));
  clients.push_back(client("guesser", 300, "fpG", {}, {"auth-guessing"}));
  const auto scores = score_clients(clients, w);
  EXPECT_EQ(scores.at("plain0").score, 0.0);
  EXPECT_GT(scores.at("verifier").score, 0.0);
  EXPECT_LT(scores.at("verifier").score, 0.5);
  EXPECT_GT(scores.at("scan0").score, scores.at("verifier").score);
  EXPECT_GT(scores.at("busy-scanner").score, scores.at("scan0").score);
  EXPECT_GT(scores.at("guesser").score, scores.at("busy-scanner").score);
}

TEST(Anomaly, ASuddenChangeInItsOwnHistoryCounts) {
  std::vector<ClientSessions> clients;
  for (int i = 0; i < 10; ++i) clients.push_back(client("plain" + std::to_string(i), 2, "fpA", {}, {}));
  ClientSessions changed = client("changed", 3, "fpA", {}, {});
  for (int i = 0; i < 3; ++i) changed.sessions.push_back({"fpA", {}, {"intercepting-proxy"}});
  clients.push_back(changed);
  const auto scores = score_clients(clients, weights);
  const Anomaly& a = scores.at("changed");
  bool began = false;
  for (const auto& r : a.reasons) {
    began |= r.text == "began showing intercepting-proxy: 0% of its earlier sessions, 100% of "
                       "its recent ones";
  }
  EXPECT_TRUE(began);
}

TEST(Anomaly, HarmlessPatternsWeighNothing) {
  std::vector<ClientSessions> clients;
  for (int i = 0; i < 10; ++i) clients.push_back(client("plain" + std::to_string(i), 2, "fpA", {}, {}));
  clients.push_back(client("mta", 6, "fpM", {}, {"connection-reuse"}));
  EXPECT_EQ(score_clients(clients, weights).at("mta").score, 0.0);
}

TEST(Anomaly, AFewSessionsWeighLessThanMany) {
  std::vector<ClientSessions> clients;
  for (int i = 0; i < 20; ++i) clients.push_back(client("plain" + std::to_string(i), 2, "fpA", {}, {}));
  clients.push_back(client("once", 1, "fpB", {}, {"intercepting-proxy"}));
  clients.push_back(client("often", 8, "fpC", {}, {"intercepting-proxy"}));
  const auto scores = score_clients(clients, weights);
  EXPECT_LT(scores.at("once").score, scores.at("often").score);
}

}  // namespace
}  // namespace smtpscope::analysis
