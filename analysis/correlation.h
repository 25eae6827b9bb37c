// How a behaviour goes with a trait: for each fingerprint and each HELO
// quirk (a group) and each pattern, the share of the group's sessions that
// show the pattern against the rest of the population, their ratio (lift),
// and a 95% Wilson score interval for the group's share, so that a handful
// of sessions is not called significant: an association counts only when
// the interval's lower bound is above the rest's share. Pure functions.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace smtpscope::analysis {

struct Observation {  // `count` sessions alike (1: one session)
  std::string fingerprint;
  std::vector<std::string> quirks;
  std::vector<std::string> patterns;
  int count = 1;
};

struct Association {
  std::string kind;   // "fingerprint" or "helo-quirk"
  std::string group;  // the fingerprint id or quirk name
  std::string pattern;
  int group_sessions = 0;
  int group_with_pattern = 0;
  int rest_sessions = 0;
  int rest_with_pattern = 0;
  double rate = 0;
  double rest_rate = 0;
  double lift = 0;  // rate / rest_rate; 0 when the rest never shows it (see rest_rate)
  double low = 0;   // 95% Wilson interval of rate
  double high = 0;
  bool significant = false;
};

// Wilson score interval for successes out of n at z (1.96: 95%).
std::pair<double, double> wilson_interval(int successes, int n, double z = 1.96);

// Every (group, pattern) pair that occurs, most significant and strongest first.
std::vector<Association> correlate(const std::vector<Observation>& sessions);

}  // namespace smtpscope::analysis
