// How unusual a client is, with the reasons, heaviest first. Two tiers:
//  - the named patterns it shows, by each pattern's weight: a part for
//    showing it (in proportion to its sessions that do) and up to twice
//    that for showing it more often than its fingerprint group does (or the
//    population, when the group is too small), judged by the lower bound of
//    the client's 95% Wilson interval so a few sessions cannot dominate;
//    both grow with the number of sessions that show it (an admin acts on
//    volume), by a factor from 1 (one session) towards `max_volume_factor`,
//    so volume alone never lifts a pattern above one ten times its weight.
//    The heaviest pattern it shows adds its weight once more (the tier):
//    any named pattern of weight w scores at least w;
//  - below that tier, the rest together score less than `secondary_cap`:
//    a change against its own history (a pattern its recent sessions show
//    and its earlier ones did not; more than one fingerprint) and HELO
//    quirks, weighted by how rare they are in the population. So a client
//    whose only oddity is its HELO ranks below every client named by a
//    pattern of weight 0.5 or more.
// A ScoredSession may stand for `count` sessions alike (stored aggregates):
// every share, interval and half of the history is counted in sessions, so
// one row of count 100 scores exactly as 100 rows of count 1.
// Pattern weights come from the patterns file (0 = harmless). Pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace smtpscope::analysis {

struct ScoredSession {  // one session of a client (or `count` alike)
  std::string fingerprint;
  std::vector<std::string> quirks;
  std::vector<std::string> patterns;
  int count = 1;               // that many sessions alike (>= 1)
  std::int64_t connect_us = 0;  // its connect time (a bucket's start); orders the history
};

struct ClientSessions {
  std::string client;
  std::vector<ScoredSession> sessions;  // any order of connect_us; equal times keep theirs
};

struct Reason {
  double weight = 0;
  std::string text;
};

struct Anomaly {
  double score = 0;
  std::vector<Reason> reasons;  // heaviest first; the weights add up to the score
};

constexpr double max_volume_factor = 2.8;
constexpr double secondary_cap = 0.45;

// The factor by which `sessions` sessions showing a pattern weigh more than one.
double volume_factor(std::int64_t sessions);

std::map<std::string, Anomaly> score_clients(const std::vector<ClientSessions>& clients,
                                             const std::map<std::string, double>& pattern_weights);

// The same scores for some clients, judged against a population given as
// the shapes of all its sessions (every client's, these included; grouped
// any way: only the counts matter), so one client's score needs no other
// client's rows.
std::map<std::string, Anomaly> score_clients_against(
    const std::vector<ClientSessions>& clients, const std::vector<ScoredSession>& population,
    const std::map<std::string, double>& pattern_weights);

}  // namespace smtpscope::analysis
