#include "correlation.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

namespace smtpscope::analysis {

std::pair<double, double> wilson_interval(int successes, int n, double z) {
  if (n <= 0) return {0.0, 1.0};
  const double p = static_cast<double>(successes) / n;
  const double z2 = z * z;
  const double denominator = 1 + z2 / n;
  const double centre = (p + z2 / (2.0 * n)) / denominator;
  const double half = z * std::sqrt(p * (1 - p) / n + z2 / (4.0 * n * n)) / denominator;
  return {std::max(0.0, centre - half), std::min(1.0, centre + half)};
}

std::vector<Association> correlate(const std::vector<Observation>& sessions) {
  int total = 0;
  std::map<std::string, int> pattern_total;
  // (kind, group) -> sessions; (kind, group, pattern) -> sessions with it
  std::map<std::pair<std::string, std::string>, int> group_size;
  std::map<std::tuple<std::string, std::string, std::string>, int> group_pattern;
  for (const Observation& o : sessions) {
    std::vector<std::pair<std::string, std::string>> groups = {{"fingerprint", o.fingerprint}};
    for (const auto& q : std::set<std::string>(o.quirks.begin(), o.quirks.end())) {
      groups.emplace_back("helo-quirk", q);
    }
    const std::set<std::string> patterns(o.patterns.begin(), o.patterns.end());
    total += o.count;
    for (const auto& p : patterns) pattern_total[p] += o.count;
    for (const auto& g : groups) {
      group_size[g] += o.count;
      for (const auto& p : patterns) group_pattern[{g.first, g.second, p}] += o.count;
    }
  }
  std::vector<Association> out;
  for (const auto& [key, with] : group_pattern) {
    const auto& [kind, group, pattern] = key;
    Association a;
    a.kind = kind;
    a.group = group;
    a.pattern = pattern;
    a.group_sessions = group_size[{kind, group}];
    a.group_with_pattern = with;
    a.rest_sessions = total - a.group_sessions;
    a.rest_with_pattern = pattern_total[pattern] - with;
    a.rate = static_cast<double>(with) / a.group_sessions;
    a.rest_rate = a.rest_sessions > 0 ? static_cast<double>(a.rest_with_pattern) / a.rest_sessions : 0;
    a.lift = a.rest_rate > 0 ? a.rate / a.rest_rate : 0;
    std::tie(a.low, a.high) = wilson_interval(with, a.group_sessions);
    a.significant = a.rest_sessions > 0 && a.low > a.rest_rate;
    out.push_back(std::move(a));
  }
  std::stable_sort(out.begin(), out.end(), [](const Association& x, const Association& y) {
    if (x.significant != y.significant) return x.significant;
    return x.low - x.rest_rate > y.low - y.rest_rate;
  });
  return out;
}

}  // namespace smtpscope::analysis
