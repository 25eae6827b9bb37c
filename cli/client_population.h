// Every client of a window, scored against all of them, from the stored
// analysis (schema 8): client_day_shapes for whole days, session_analysis
// for the first, partial day of a --since window, so the window is exact
// and a query reads per-client counts, not sessions. Each client's timing
// comes from its sessions' connect times (one pass over an index). The
// clients list, the overview, correlate, metrics and `report --client`
// all take their scores from here, so a client's score is the same
// whichever command asks.
#pragma once

#include <cstdint>
#include <map>
#include <ostream>
#include <optional>
#include <string>
#include <vector>

#include "client_report.h"
#include "pattern_timeline.h"
#include "patterns.h"
#include "result.h"
#include "stored_analysis.h"
#include "sql_connection.h"
#include "sqlite.h"

namespace smtpscope::cli {

struct PopulationFilter {
  std::optional<std::int64_t> since_us;  // sessions that began at or after this
  std::optional<std::string> host;       // on this mail server only
  bool include_local = false;  // rank local reinjection clients (local_client.h) too
  std::string asked_client;    // ranked even if local (report --client)
  bool only_asked = false;     // read the asked client alone, scored against all
};

struct Population {
  std::vector<ClientSummary> clients;  // most anomalous first (see by_client)
  std::int64_t sessions = 0;
  std::map<std::string, std::int64_t> sessions_with_pattern;  // any of its patterns
  std::map<std::string, std::int64_t> sessions_with_quirk;
  std::vector<analysis::Observation> observations;  // per shape, weighted: for correlate
  std::size_t local_left_out = 0;  // local reinjection clients not ranked
};

// Brings the stored analysis up to date before a view reads it: when it
// was made with other patterns or another smtpscope, re-analyses every
// stored session (a progress bar on a terminal); then the sessions with
// events no analysis has seen, open ones too. True when the stored analysis
// is current; false for a read-only database whose analysis is stale or
// behind (with a note on `notes`): the caller analyses in memory instead.
Result<bool> refresh_analysis(sqlite::Database& db, const analysis::AnalysisRules& rules,
                              std::ostream& notes);

// The population of sessions analysed in memory (a read-only database whose
// stored analysis is not current): the same scores from the same function.
Population population_in_memory(std::vector<AnalysedSession> sessions,
                                const PopulationFilter& filter);

// Draws "analysed N of M sessions (P%), R/s" on stderr when it is a terminal.
analysis::AnalyseProgress progress_bar(const std::string& what);

// From an SQLite file or a PostgreSQL store alike (on PostgreSQL the
// stored analysis is each host's, forwarded: never refreshed here).
Result<Population> read_population(sql::Connection& db, const analysis::PatternSet& patterns,
                                   const PopulationFilter& filter);
Result<Population> read_population(sqlite::Database& db, const analysis::PatternSet& patterns,
                                   const PopulationFilter& filter);

// Sessions per pattern over time, from session_analysis: one count per
// minute and naming pattern ("" for none), oldest first.
Result<std::vector<TimedCount>> read_pattern_minutes(sql::Connection& db,
                                                     const PopulationFilter& filter);

}  // namespace smtpscope::cli
