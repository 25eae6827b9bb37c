// How unusual a client is, with the reasons, heaviest first:
//  - each pattern it shows, by the pattern's weight: a part for showing it
//    at all (in proportion to its sessions that do), so any named pattern
//    ranks a client above ordinary ones, and up to twice that for showing
//    it more often than its fingerprint group does (or the population, when
//    the group is too small), judged by the lower bound of the client's 95%
//    Wilson interval so a few sessions cannot dominate; both grow with the
//    log of the number of sessions that show it;
//  - a change against its own history: a pattern its recent sessions show
//    and its earlier ones did not, or a changed fingerprint;
//  - HELO quirks, weighted by how rare they are in the population.
// Pattern weights come from the patterns file (0 = harmless). Pure.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace smtpscope::analysis {

struct ScoredSession {  // one session of a client, in time order
  std::string fingerprint;
  std::vector<std::string> quirks;
  std::vector<std::string> patterns;
  int count = 1;
  std::int64_t connect_us = 0;
};

struct ClientSessions {
  std::string client;
  std::vector<ScoredSession> sessions;
};

struct Reason {
  double weight = 0;
  std::string text;
};

struct Anomaly {
  double score = 0;
  std::vector<Reason> reasons;  // heaviest first
};

std::map<std::string, Anomaly> score_clients(const std::vector<ClientSessions>& clients,
                                             const std::map<std::string, double>& pattern_weights);

}  // namespace smtpscope::analysis
