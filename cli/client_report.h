// Per-client analysis for the command line: each session's facts and
// patterns, gathered per client, rendered as the `clients` table and the
// `report` (text for terminals, JSON for scripts). Client strings pass
// through printable() in text; JSON carries them as data.
#pragma once

#include <string>
#include <vector>

#include "anomaly.h"
#include "client_timing.h"
#include "correlation.h"
#include "fingerprint.h"
#include "patterns.h"
#include "session_facts.h"
#include "session_reader.h"
#include "sqlite.h"

namespace smtpscope::cli {

struct AnalysedSession {
  const SessionRecord* session;
  analysis::SessionFacts facts;
  std::vector<const analysis::Pattern*> patterns;
  analysis::Fingerprint fingerprint;
};

struct ClientSummary {
  std::string client_addr;
  std::vector<AnalysedSession> sessions;
  int transactions = 0;
  int aborted = 0;
  int delivered = 0;
  std::vector<std::string> quirks;
  std::vector<std::pair<const analysis::Pattern*, int>> pattern_counts;  // most sessions first
  std::vector<std::string> fingerprints;  // distinct ids, in order of first appearance
  int fingerprint_changes = 0;            // sessions whose fingerprint differs from the one before
  analysis::Anomaly anomaly;
  analysis::ClientTiming timing;  // regular interval, largest burst
};

// Adds to `population` (oldest first) those of `own` it lacks (by id),
// keeping the order: a client's sessions older than the population read.
void add_missing_sessions(std::vector<SessionRecord>& population, std::vector<SessionRecord> own);

std::vector<AnalysedSession> analyse(const std::vector<SessionRecord>& sessions,
                                     const analysis::PatternSet& patterns);
// Grouped per client, scored against all of them, most anomalous first;
// equal scores: more sessions first, then the higher abort rate, then the
// address (a stable order).
std::vector<ClientSummary> by_client(std::vector<AnalysedSession> sessions);

std::string render_clients_text(const std::vector<ClientSummary>& clients);
std::string render_clients_json(const std::vector<ClientSummary>& clients);
std::string render_report_text(const ClientSummary& client);
std::string render_report_json(const ClientSummary& client);

// Stores each session's stage string, patterns, fingerprint and quirks in
// session_analysis (the SQL views read it). Errors are returned, not fatal.
Status save_analysis(sqlite::Database& db, const std::vector<ClientSummary>& clients);

// The correlation table over every analysed session.
std::vector<analysis::Association> correlate(const std::vector<ClientSummary>& clients);
std::string render_correlation_text(const std::vector<analysis::Association>& associations,
                                    const std::vector<ClientSummary>& clients);
std::string render_correlation_json(const std::vector<analysis::Association>& associations);

}  // namespace smtpscope::cli
