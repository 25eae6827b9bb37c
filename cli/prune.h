// `smtpscope db prune --older-than D`: retention. Deletes the sessions that
// began before now - D with their transactions, events and analysis, and
// the log's outbound records and drop counts older than that. Works in
// chunks of sessions, one short write transaction each, so the daemons'
// batches wait milliseconds, not the whole prune. Ingest positions are kept
// (re-reading an old log adds nothing). On a PostgreSQL store (--db
// postgresql://...) the same, in chunks of 10,000 sessions: the other
// hosts' writers keep inserting meanwhile (row locks, no file lock), and
// the analysis rows go first so its triggers keep client_day_shapes equal
// to what remains. --vacuum there runs VACUUM (space for reuse, no rewrite).
#pragma once

#include <cstdint>
#include <string>

#include "result.h"
#include "database_access.h"
#include "sql_connection.h"
#include "sqlite.h"

namespace smtpscope::cli {

struct PruneCounts {
  std::int64_t sessions = 0;
  std::int64_t transactions = 0;
  std::int64_t events = 0;
  std::int64_t remote_events = 0;
  std::int64_t drops = 0;
};

inline constexpr std::int64_t sqlite_sessions_per_chunk = 2000;
inline constexpr std::int64_t pg_sessions_per_chunk = 10000;

// Everything older than cutoff_us (microseconds since the epoch).
Result<PruneCounts> prune_older_than(sql::Connection& db, std::int64_t cutoff_us,
                                     std::int64_t sessions_per_chunk = sqlite_sessions_per_chunk);
Result<PruneCounts> prune_older_than(sqlite::Database& db, std::int64_t cutoff_us,
                                     std::int64_t sessions_per_chunk = sqlite_sessions_per_chunk);

struct PruneOptions {
  StoreLocation database;
  std::string older_than;  // a duration: 90d, 24h
  bool vacuum = false;
  std::string format = "text";
};

// Exit status 0, 1 (database), 2 (usage).
int run_prune(const PruneOptions& options);

}  // namespace smtpscope::cli
