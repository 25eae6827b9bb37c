// Per-client analysis for the command line: each session's facts and
// patterns, gathered per client, rendered as the `clients` table and the
// `report` (text for terminals, JSON for scripts). Client strings pass
// through printable() in text; JSON carries them as data.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "anomaly.h"
#include "client_timing.h"
#include "correlation.h"
#include "fingerprint.h"
#include "patterns.h"
#include "session_facts.h"
#include "session_reader.h"

namespace smtpscope::cli {

struct AnalysedSession {
  const SessionRecord* session;
  analysis::SessionFacts facts;
  std::vector<const analysis::Pattern*> patterns;
  analysis::Fingerprint fingerprint;
};

struct FingerprintUse {
  std::string id;
  std::int64_t sessions = 0;
  std::string features;  // readable
};

struct HostUse {  // an MTA host of the fleet store and the client's sessions there
  std::string host;
  std::int64_t sessions = 0;
};

struct ClientSummary {
  std::string client_addr;
  std::int64_t session_count = 0;
  std::vector<AnalysedSession> sessions;  // the sessions themselves, when read (report, discover)
  std::int64_t transactions = 0;
  std::int64_t aborted = 0;
  std::int64_t delivered = 0;
  std::vector<std::string> quirks;
  std::vector<std::pair<const analysis::Pattern*, int>> pattern_counts;  // most sessions first
  std::vector<FingerprintUse> fingerprints;  // most sessions first
  std::vector<HostUse> hosts;  // the hosts named, most sessions first (none on one host)
  analysis::Anomaly anomaly;
  analysis::ClientTiming timing;  // regular interval, largest burst
};

// Adds to `population` (oldest first) those of `own` it lacks (by id),
// keeping the order: a client's sessions older than the population read.
void add_missing_sessions(std::vector<SessionRecord>& population, std::vector<SessionRecord> own);

std::vector<AnalysedSession> analyse(const std::vector<SessionRecord>& sessions,
                                     const analysis::PatternSet& patterns);
// Grouped per client (their sessions kept), scored against all of them and
// ranked as rank_clients does.
std::vector<ClientSummary> by_client(std::vector<AnalysedSession> sessions);

// Scores each client (scored[i] holds the sessions of clients[i]) against
// all of them and sorts them, most anomalous first; equal scores: more
// sessions first, then the higher abort rate, then the address (a stable
// order).
void rank_clients(std::vector<ClientSummary>& clients,
                  const std::vector<analysis::ClientSessions>& scored,
                  const std::map<std::string, double>& pattern_weights);

std::string render_clients_text(const std::vector<ClientSummary>& clients);
std::string render_clients_json(const std::vector<ClientSummary>& clients);
std::string render_report_text(const ClientSummary& client);
std::string render_report_json(const ClientSummary& client);

std::string render_correlation_text(const std::vector<analysis::Association>& associations,
                                    const std::vector<ClientSummary>& clients);
std::string render_correlation_json(const std::vector<analysis::Association>& associations);

}  // namespace smtpscope::cli
