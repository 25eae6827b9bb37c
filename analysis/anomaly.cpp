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

double weight_of(const std::map<std::string, double>& weights, const std::string& name) {
  auto found = weights.find(name);
  return found == weights.end() ? 1.0 : found->second;
}

std::set<std::string> distinct(const std::vector<std::string>& list) {
  return {list.begin(), list.end()};
}

int sessions_of(const ClientSessions& c) {
  int n = 0;
  for (const auto& s : c.sessions) n += s.count;
  return n;
}

struct Population {
  int sessions = 0;
  std::map<std::string, int> with_pattern;
  std::map<std::string, int> with_quirk;
  std::map<std::string, int> by_fingerprint;
  std::map<std::pair<std::string, std::string>, int> fingerprint_pattern;
};

void add_to(Population& p, const ScoredSession& s) {
  p.sessions += s.count;
  p.by_fingerprint[s.fingerprint] += s.count;
  for (const auto& q : distinct(s.quirks)) p.with_quirk[q] += s.count;
  for (const auto& name : distinct(s.patterns)) {
    p.with_pattern[name] += s.count;
    p.fingerprint_pattern[{s.fingerprint, name}] += s.count;
  }
}

Population count(const std::vector<ClientSessions>& clients) {
  Population p;
  for (const auto& c : clients) {
    for (const auto& s : c.sessions) add_to(p, s);
  }
  return p;
}

Population count(const std::vector<ScoredSession>& sessions) {
  Population p;
  for (const auto& s : sessions) add_to(p, s);
  return p;
}

std::string dominant_fingerprint(const ClientSessions& c) {
  std::map<std::string, int> counts;
  for (const auto& s : c.sessions) counts[s.fingerprint] += s.count;
  return std::max_element(counts.begin(), counts.end(),
                          [](const auto& a, const auto& b) { return a.second < b.second; })
      ->first;
}

// The pattern tier: each pattern by its weight, share, excess and volume;
// the heaviest one once more by its weight.
void pattern_reasons(const ClientSessions& c, const Population& p,
                     const std::map<std::string, double>& weights, Anomaly& a) {
  const int n = sessions_of(c);
  const std::string fp = dominant_fingerprint(c);
  std::map<std::string, int> own;
  std::map<std::string, int> own_in_fp;
  int own_fp_sessions = 0;
  for (const auto& s : c.sessions) {
    if (s.fingerprint == fp) own_fp_sessions += s.count;
    for (const auto& name : distinct(s.patterns)) {
      own[name] += s.count;
      if (s.fingerprint == fp) own_in_fp[name] += s.count;
    }
  }
  double heaviest = 0;
  std::size_t heaviest_reason = 0;
  for (const auto& [name, k] : own) {
    const double weight = weight_of(weights, name);
    if (weight <= 0) continue;
    // The others of the same fingerprint, else everyone else.
    const int group = p.by_fingerprint.at(fp) - own_fp_sessions;
    const bool by_group = group >= smallest_group;
    const int base_n = by_group ? group : p.sessions - n;
    const auto in_group = p.fingerprint_pattern.find({fp, name});
    const int base_k = by_group ? (in_group == p.fingerprint_pattern.end()
                                       ? 0
                                       : in_group->second - own_in_fp[name])
                                : p.with_pattern.at(name) - k;
    const double base = base_n > 0 ? static_cast<double>(base_k) / base_n : 0.0;
    const double excess = std::max(0.0, wilson_interval(k, n).first - base);
    const double share = static_cast<double>(k) / n;
    if (weight > heaviest) {
      heaviest = weight;
      heaviest_reason = a.reasons.size();
    }
    a.reasons.push_back({weight * (share + 2 * excess) * volume_factor(k),
                         fmt::format("{} of {} sessions are {} (others {}: {:.0f}%)", k, n, name,
                                     by_group ? "with its fingerprint" : "in the population",
                                     base * 100)});
  }
  if (heaviest > 0) a.reasons[heaviest_reason].weight += heaviest;
}

// The rate of `name` in sessions [from, to) of the client's history,
// counted in sessions (a row of count c is c sessions in a row).
double rate_between(const std::vector<const ScoredSession*>& history, const std::string& name,
                    int from, int to) {
  int k = 0, position = 0;
  for (const ScoredSession* s : history) {
    const int first = std::max(position, from), last = std::min(position + s->count, to);
    if (last > first && distinct(s->patterns).count(name)) k += last - first;
    position += s->count;
  }
  return static_cast<double>(k) / (to - from);
}

void history_reasons(const ClientSessions& c, const std::map<std::string, double>& weights,
                     Anomaly& a) {
  std::vector<const ScoredSession*> history;
  for (const auto& s : c.sessions) history.push_back(&s);
  std::stable_sort(history.begin(), history.end(),
                   [](const auto* x, const auto* y) { return x->connect_us < y->connect_us; });
  const int n = sessions_of(c);
  if (n >= 4) {
    const int half = n / 2;
    std::set<std::string> names;
    for (const auto& s : c.sessions) names.insert(s.patterns.begin(), s.patterns.end());
    for (const auto& name : names) {
      const double weight = weight_of(weights, name);
      if (weight <= 0) continue;
      const double before = rate_between(history, name, 0, half);
      const double after = rate_between(history, name, half, n);
      if (after - before >= 0.5) {
        a.reasons.push_back({weight * 1.5 * (after - before),
                             fmt::format("began showing {}: {:.0f}% of its earlier sessions, "
                                         "{:.0f}% of its recent ones",
                                         name, before * 100, after * 100)});
      }
    }
  }
  std::set<std::string> fingerprints;
  for (const auto& s : c.sessions) fingerprints.insert(s.fingerprint);
  if (fingerprints.size() > 1) {
    a.reasons.push_back({0.5, fmt::format("it showed {} fingerprints", fingerprints.size())});
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

// Scales the reasons from `first` on so that together they weigh less than
// secondary_cap (s * cap / (s + cap): about s when small).
void cap_secondary(Anomaly& a, std::size_t first) {
  double sum = 0;
  for (std::size_t i = first; i < a.reasons.size(); ++i) sum += a.reasons[i].weight;
  if (sum <= 0) return;
  const double scale = secondary_cap / (sum + secondary_cap);
  for (std::size_t i = first; i < a.reasons.size(); ++i) a.reasons[i].weight *= scale;
}

}  // namespace

double volume_factor(std::int64_t sessions) {
  if (sessions <= 1) return 1.0;
  const double l = std::log10(static_cast<double>(sessions));
  return 1 + (max_volume_factor - 1) * l / (l + 1);
}

namespace {

std::map<std::string, Anomaly> score_against(const std::vector<ClientSessions>& clients,
                                             const Population& population,
                                             const std::map<std::string, double>& weights) {
  std::map<std::string, Anomaly> out;
  for (const auto& c : clients) {
    if (sessions_of(c) <= 0) continue;
    Anomaly a;
    pattern_reasons(c, population, weights, a);
    const std::size_t secondary = a.reasons.size();
    history_reasons(c, weights, a);
    quirk_reasons(c, population, a);
    cap_secondary(a, secondary);
    // A reason that weighs (next to) nothing is noise in the report.
    std::erase_if(a.reasons, [](const Reason& r) { return r.weight < 0.005; });
    std::stable_sort(a.reasons.begin(), a.reasons.end(),
                     [](const Reason& x, const Reason& y) { return x.weight > y.weight; });
    for (const auto& r : a.reasons) a.score += r.weight;
    out[c.client] = std::move(a);
  }
  return out;
}

}  // namespace

std::map<std::string, Anomaly> score_clients(const std::vector<ClientSessions>& clients,
                                             const std::map<std::string, double>& weights) {
  return score_against(clients, count(clients), weights);
}

std::map<std::string, Anomaly> score_clients_against(
    const std::vector<ClientSessions>& clients, const std::vector<ScoredSession>& population,
    const std::map<std::string, double>& weights) {
  return score_against(clients, count(population), weights);
}

}  // namespace smtpscope::analysis
