#include "anomaly.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "correlation.h"

namespace smtpscope::analysis {
namespace {

constexpr int smallest_group = 5;  // fewer sessions: compare with the population

double quirk_severity(const std::string& quirk) {
  static const std::map<std::string, double> severity = {
      {"empty", 1.0},         {"our-name", 1.5},        {"localhost", 1.0},
      {"bare-ip", 0.8},       {"literal-mismatch", 1.0}, {"invalid-characters", 1.0},
      {"over-long", 1.0},     {"non-fqdn", 0.6},        {"dynamic-looking", 0.5},
      {"changed-in-session", 0.5}, {"helo-not-ehlo", 0.3}, {"address-literal", 0.3},
      {"name-mismatch", 0.2}};
  auto found = severity.find(quirk);
  return found == severity.end() ? 0.5 : found->second;
}

bool has(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

struct Population {
  int sessions = 0;
  std::map<std::string, int> with_pattern;
  std::map<std::string, int> with_quirk;
  std::map<std::string, int> by_fingerprint;
  std::map<std::pair<std::string, std::string>, int> fingerprint_pattern;
};

Population count(const std::vector<ClientSessions>& clients) {
  Population p;
  for (const auto& c : clients) {
    for (const auto& s : c.sessions) {
      p.sessions += 1;
      p.by_fingerprint[s.fingerprint] += 1;
      for (const auto& q : std::set<std::string>(s.quirks.begin(), s.quirks.end())) p.with_quirk[q] += 1;
      for (const auto& name : std::set<std::string>(s.patterns.begin(), s.patterns.end())) {
        p.with_pattern[name] += 1;
        p.fingerprint_pattern[{s.fingerprint, name}] += 1;
      }
    }
  }
  return p;
}

std::string dominant_fingerprint(const ClientSessions& c) {
  std::map<std::string, int> counts;
  for (const auto& s : c.sessions) counts[s.fingerprint] += 1;
  return std::max_element(counts.begin(), counts.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; })
      ->first;
}

void pattern_reasons(const ClientSessions& c, const Population& p,
                     const std::map<std::string, double>& weights, Anomaly& a) {
  const int n = static_cast<int>(c.sessions.size());
  const std::string fp = dominant_fingerprint(c);
  std::map<std::string, int> own;
  std::map<std::string, int> own_in_fp;
  int own_fp_sessions = 0;
  for (const auto& s : c.sessions) {
    if (s.fingerprint == fp) own_fp_sessions += 1;
    for (const auto& name : std::set<std::string>(s.patterns.begin(), s.patterns.end())) {
      own[name] += 1;
      if (s.fingerprint == fp) own_in_fp[name] += 1;
    }
  }
  for (const auto& [name, k] : own) {
    const double weight = weights.count(name) ? weights.at(name) : 1.0;
    if (weight <= 0) continue;
    // The others of the same fingerprint, else everyone else.
    const int group = p.by_fingerprint.at(fp) - own_fp_sessions;
    const bool by_group = group >= smallest_group;
    const int base_n = by_group ? group : p.sessions - n;
    const int base_k = by_group ? p.fingerprint_pattern.count({fp, name})
                                      ? p.fingerprint_pattern.at({fp, name}) - own_in_fp[name]
                                      : 0
                                : p.with_pattern.at(name) - k;
    const double base = base_n > 0 ? static_cast<double>(base_k) / base_n : 0.0;
    const double excess = std::max(0.0, wilson_interval(k, n).first - base);
    // A named pattern always counts, by its weight and the share of the
    // client's sessions that show it (so a client that shows one ranks
    // above every ordinary one, and a bot is no less a bot for being one of
    // many alike); more when it is rarer among the others, and more with
    // the number of sessions that show it (an admin acts on volume).
    const double share = static_cast<double>(k) / n;
    const double volume = 1 + 0.5 * std::log10(static_cast<double>(k));
    a.reasons.push_back({weight * (share + 2 * excess) * volume,
                         fmt::format("{} of {} sessions are {} (others {}: {:.0f}%)", k, n, name,
                                     by_group ? "with its fingerprint" : "in the population",
                                     base * 100)});
  }
}

void history_reasons(const ClientSessions& c, const std::map<std::string, double>& weights,
                     Anomaly& a) {
  const std::size_t n = c.sessions.size();
  if (n >= 4) {
    const std::size_t half = n / 2;
    std::set<std::string> names;
    for (const auto& s : c.sessions) names.insert(s.patterns.begin(), s.patterns.end());
    for (const auto& name : names) {
      const double weight = weights.count(name) ? weights.at(name) : 1.0;
      if (weight <= 0) continue;
      auto rate = [&](std::size_t from, std::size_t to) {
        int k = 0;
        for (std::size_t i = from; i < to; ++i) k += has(c.sessions[i].patterns, name);
        return static_cast<double>(k) / static_cast<double>(to - from);
      };
      const double before = rate(0, half), after = rate(half, n);
      if (after - before >= 0.5) {
        a.reasons.push_back({weight * 1.5 * (after - before),
                             fmt::format("began showing {}: {:.0f}% of its earlier sessions, "
                                         "{:.0f}% of its recent ones",
                                         name, before * 100, after * 100)});
      }
    }
  }
  int changes = 0;
  for (std::size_t i = 1; i < n; ++i) {
    changes += c.sessions[i].fingerprint != c.sessions[i - 1].fingerprint;
  }
  if (changes > 0) {
    a.reasons.push_back({0.5, fmt::format("its fingerprint changed {} time{}", changes,
                                          changes == 1 ? "" : "s")});
  }
}

void quirk_reasons(const ClientSessions& c, const Population& p, Anomaly& a) {
  std::set<std::string> quirks;
  for (const auto& s : c.sessions) quirks.insert(s.quirks.begin(), s.quirks.end());
  for (const auto& q : quirks) {
    const double share = static_cast<double>(p.with_quirk.at(q)) / p.sessions;
    a.reasons.push_back({quirk_severity(q) * (1 - share),
                         fmt::format("HELO quirk {} (in {:.0f}% of all sessions)", q, share * 100)});
  }
}

}  // namespace

std::map<std::string, Anomaly> score_clients(const std::vector<ClientSessions>& clients,
                                             const std::map<std::string, double>& weights) {
  const Population population = count(clients);
  std::map<std::string, Anomaly> out;
  for (const auto& c : clients) {
    if (c.sessions.empty()) continue;
    Anomaly a;
    pattern_reasons(c, population, weights, a);
    history_reasons(c, weights, a);
    quirk_reasons(c, population, a);
    // A reason that weighs (next to) nothing is noise in the report.
    std::erase_if(a.reasons, [](const Reason& r) { return r.weight < 0.005; });
    std::stable_sort(a.reasons.begin(), a.reasons.end(),
                     [](const Reason& x, const Reason& y) { return x.weight > y.weight; });
    for (const auto& r : a.reasons) a.score += r.weight;
    out[c.client] = std::move(a);
  }
  return out;
}

}  // namespace smtpscope::analysis
