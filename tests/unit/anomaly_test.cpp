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
  // Named, so above the ordinary ones, but above the tier (the pattern's
  // weight, 1) far below the same behaviour where its group does not show it.
  EXPECT_GT(scores.at("proxy3").score, scores.at("plain3").score);
  EXPECT_LT((scores.at("proxy3").score - 1) * 1.5, scores.at("outlier").score - 1);
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

// Issue 14 item 7: smtplib's default EHLO [127.0.0.1] from 127.0.0.2 (and
// worse) gave an ordinary sender ~2.5, above every named pattern.
TEST(Anomaly, HeloQuirksAndFingerprintChangesStayBelowThePatternTier) {
  const std::map<std::string, double> w = {{"temp-rejected", 0.5}};
  std::vector<ClientSessions> clients;
  for (int i = 0; i < 20; ++i) clients.push_back(client("plain" + std::to_string(i), 5, "fpA", {}, {}));
  ClientSessions quirky = client("quirky", 3, "fpQ",
                                 {"our-name", "literal-mismatch", "address-literal", "localhost",
                                  "empty", "invalid-characters", "over-long"},
                                 {});
  for (int i = 0; i < 3; ++i) quirky.sessions.push_back({"fpR" + std::to_string(i), {"bare-ip"}, {}});
  clients.push_back(quirky);
  // Named once in a hundred sessions, with a fingerprint common to all.
  ClientSessions mta = client("mta", 99, "fpA", {}, {});
  mta.sessions.push_back({"fpA", {}, {"temp-rejected"}});
  clients.push_back(mta);
  const auto scores = score_clients(clients, w);
  EXPECT_GT(scores.at("quirky").score, 0.0);
  EXPECT_LT(scores.at("quirky").score, secondary_cap);
  EXPECT_GE(scores.at("mta").score, 0.5);
  EXPECT_GT(scores.at("mta").score, scores.at("quirky").score);
  double sum = 0;
  for (const auto& r : scores.at("quirky").reasons) sum += r.weight;
  EXPECT_DOUBLE_EQ(sum, scores.at("quirky").score);
}

// The mchirico log: a client that scanned 3 times, then guessed 3 times
// (6.16) ranked above the brute-forcer guessing in 3,430 sessions (6.08).
TEST(Anomaly, ThousandsOfSessionsOutrankSixOfTheSameWeight) {
  const std::map<std::string, double> w = {{"scanner", 0.8}, {"auth-guessing", 2.0}};
  std::vector<ClientSessions> clients;
  for (int i = 0; i < 30; ++i) clients.push_back(client("plain" + std::to_string(i), 5, "fpA", {}, {}));
  for (int i = 0; i < 20; ++i) clients.push_back(client("scan" + std::to_string(i), 3, "fpS", {}, {"scanner"}));
  ClientSessions turned = client("turned", 3, "fpS", {}, {"scanner"});
  for (int i = 0; i < 3; ++i) turned.sessions.push_back({"fpG", {}, {"auth-guessing"}});
  clients.push_back(turned);
  ClientSessions brute = client("brute", 3430, "fpG", {}, {"auth-guessing"});
  for (int i = 0; i < 10; ++i) brute.sessions.push_back({"fpS", {}, {"scanner"}});
  clients.push_back(brute);
  const auto scores = score_clients(clients, w);
  EXPECT_GT(scores.at("brute").score, scores.at("turned").score);
}

TEST(Anomaly, VolumeAloneNeverLiftsAWeightTenthPatternAboveAWeightOneOne) {
  const std::map<std::string, double> w = {{"verification-probe", 0.1}, {"scanner", 1.0}};
  std::vector<ClientSessions> clients;
  for (int i = 0; i < 30; ++i) clients.push_back(client("plain" + std::to_string(i), 5, "fpA", {}, {}));
  ClientSessions verifier{"verifier", {{"fpV", {}, {"verification-probe"}, 1000000}}};
  clients.push_back(verifier);
  ClientSessions once = client("once", 49, "fpA", {}, {});
  once.sessions.push_back({"fpA", {}, {"scanner"}});
  clients.push_back(once);
  const auto scores = score_clients(clients, w);
  EXPECT_LT(scores.at("verifier").score, scores.at("once").score);
  EXPECT_LT(0.1 * (1 + 3 * volume_factor(1000000000)), 1.0);
}

// Stored aggregates: one row standing for 100 sessions alike scores as the
// 100 sessions do, history and fingerprints included.
TEST(Anomaly, ARowOfCountHundredScoresAsHundredRows) {
  const std::map<std::string, double> w = {{"scanner", 0.8}, {"intercepting-proxy", 1.0}};
  auto population = [](std::vector<ClientSessions> clients) {
    for (int i = 0; i < 10; ++i) clients.push_back(client("plain" + std::to_string(i), 7, "fpA", {}, {}));
    clients.push_back(client("scan", 4, "fpS", {"bare-ip"}, {"scanner"}));
    return clients;
  };
  ClientSessions rows{"x", {}};
  for (int i = 0; i < 100; ++i) rows.sessions.push_back({"fpA", {"non-fqdn"}, {}, 1, 1000 + i});
  for (int i = 0; i < 101; ++i) {
    rows.sessions.push_back({"fpB", {"non-fqdn"}, {"intercepting-proxy"}, 1, 5000 + i});
  }
  ClientSessions grouped{"x", {{"fpB", {"non-fqdn"}, {"intercepting-proxy"}, 101, 5000},
                                {"fpA", {"non-fqdn"}, {}, 100, 1000}}};  // any order
  const auto one = score_clients(population({rows}), w).at("x");
  const auto other = score_clients(population({grouped}), w).at("x");
  EXPECT_EQ(one.score, other.score);
  ASSERT_EQ(one.reasons.size(), other.reasons.size());
  for (std::size_t i = 0; i < one.reasons.size(); ++i) {
    EXPECT_EQ(one.reasons[i].text, other.reasons[i].text);
    EXPECT_EQ(one.reasons[i].weight, other.reasons[i].weight);
  }
  bool began = false;
  for (const auto& r : one.reasons) began |= r.text.starts_with("began showing intercepting-proxy");
  EXPECT_TRUE(began);
}

}  // namespace
}  // namespace smtpscope::analysis
