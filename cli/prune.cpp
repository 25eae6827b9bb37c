#include "prune.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <iostream>

#include "database_access.h"
#include "duration.h"
#include "sql_dialect.h"
#include "time_view.h"

namespace smtpscope::cli {

namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

// The oldest chunk of sessions to go is gathered into a temporary table;
// each statement deletes what belongs to them, the analysis first (its
// triggers take each session out of client_day_shapes).
constexpr std::string_view select_chunk =
    "INSERT INTO prune_ids SELECT id FROM sessions WHERE connect_us < ?1 "
    "ORDER BY connect_us LIMIT ?2";
constexpr std::string_view delete_session_rows[] = {
    "DELETE FROM session_analysis WHERE session_id IN (SELECT id FROM prune_ids)",
    "DELETE FROM event_rows WHERE session_id IN (SELECT id FROM prune_ids)",
    "DELETE FROM transactions WHERE session_id IN (SELECT id FROM prune_ids)",
    "DELETE FROM sessions WHERE id IN (SELECT id FROM prune_ids)",
};

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Result<std::int64_t> run_counted(sql::Connection& db, std::string_view sql,
                                 std::int64_t cutoff_us, std::int64_t limit = 0) {
  auto statement = db.prepare(sql);
  if (!statement) return statement.status();
  statement.value().bind(1, cutoff_us);
  if (limit > 0) statement.value().bind(2, limit);
  if (Status ran = statement.value().run(); !ran) return ran;
  return std::int64_t{db.changes()};
}

// One chunk in one write transaction; the number of sessions it removed.
Result<std::int64_t> prune_chunk(sql::Connection& db, std::int64_t cutoff_us,
                                 std::int64_t sessions_per_chunk, PruneCounts& counts) {
  if (Status begun = db.exec(sql::begin_write(db.dialect())); !begun) return begun;
  auto chunk = [&]() -> Result<std::int64_t> {
    if (Status cleared = db.exec("DELETE FROM prune_ids"); !cleared) return cleared;
    auto chosen = run_counted(db, select_chunk, cutoff_us, sessions_per_chunk);
    if (!chosen) return chosen;
    if (const std::string analyse = sql::analyse_temp(db.dialect(), "prune_ids"); !analyse.empty()) {
      if (Status analysed = db.exec(analyse); !analysed) return analysed;
    }
    std::int64_t* targets[] = {nullptr, &counts.events, &counts.transactions, &counts.sessions};
    for (std::size_t i = 0; i < std::size(delete_session_rows); ++i) {
      if (Status deleted = db.exec(delete_session_rows[i]); !deleted) return deleted;
      if (targets[i]) *targets[i] += db.changes();
    }
    // A client whose newest session is older has none left.
    auto timing = run_counted(db, "DELETE FROM client_timing WHERE last_connect_us < ?1",
                              cutoff_us);
    if (!timing) return timing;
    return chosen;
  }();
  if (!chunk) {
    (void)db.exec("ROLLBACK");
    return chunk;
  }
  if (Status committed = db.exec("COMMIT"); !committed) return committed;
  return chunk;
}

std::string render_text(const PruneCounts& c, double seconds, const std::string& cutoff) {
  return fmt::format(
      "pruned everything before {}: {} sessions, {} transactions, {} events, {} outbound log "
      "records, {} drop counts in {:.2f} s\n",
      cutoff, c.sessions, c.transactions, c.events, c.remote_events, c.drops, seconds);
}

std::string render_json(const PruneCounts& c, double seconds, std::int64_t cutoff_us) {
  return nlohmann::json{{"cutoff_us", cutoff_us},     {"sessions", c.sessions},
                        {"transactions", c.transactions}, {"events", c.events},
                        {"remote_events", c.remote_events}, {"drops", c.drops},
                        {"seconds", seconds}}
             .dump(2) +
         "\n";
}

}  // namespace

Result<PruneCounts> prune_older_than(sql::Connection& db, std::int64_t cutoff_us,
                                     std::int64_t sessions_per_chunk) {
  if (Status created = db.exec(sql::create_temp_ids(db.dialect(), "prune_ids")); !created) {
    return created.context("prune");
  }
  PruneCounts counts;
  for (;;) {
    auto removed = prune_chunk(db, cutoff_us, sessions_per_chunk, counts);
    if (!removed) return removed.status().context("prune sessions");
    if (removed.value() < sessions_per_chunk) break;
  }
  auto remote = run_counted(db, "DELETE FROM remote_events WHERE time_us < ?1", cutoff_us);
  if (!remote) return remote.status().context("prune outbound log records");
  counts.remote_events = remote.value();
  auto drops = run_counted(db, "DELETE FROM drops WHERE time_us < ?1", cutoff_us);
  if (!drops) return drops.status().context("prune drop counts");
  counts.drops = drops.value();
  return counts;
}

int run_prune(const PruneOptions& options) {
  auto age = parse_duration_us(options.older_than);
  if (!age) {
    std::cerr << "smtpscope: --older-than: " << age.message() << '\n';
    return exit_usage;
  }
  auto db = open_store(options.database, Access::write);
  if (!db) {
    std::cerr << "smtpscope: " << db.message() << '\n';
    return exit_failure;
  }
  const auto started = std::chrono::steady_clock::now();
  const std::int64_t cutoff_us = now_us() - age.value();
  const bool fleet = db.value()->dialect() == sql::Dialect::postgresql;
  auto counts = prune_older_than(*db.value(), cutoff_us,
                                 fleet ? pg_sessions_per_chunk : sqlite_sessions_per_chunk);
  if (!counts) {
    std::cerr << "smtpscope: " << counts.message() << " (what was committed stays pruned)\n";
    return exit_failure;
  }
  if (options.vacuum) {
    if (Status vacuumed = db.value()->exec("VACUUM"); !vacuumed) {
      std::cerr << "smtpscope: vacuum: " << vacuumed.message() << '\n';
      return exit_failure;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const std::string cutoff_text = utc_text(cutoff_us);
  std::cout << (options.format == "json" ? render_json(counts.value(), seconds, cutoff_us)
                                         : render_text(counts.value(), seconds, cutoff_text));
  return 0;
}

Result<PruneCounts> prune_older_than(sqlite::Database& db, std::int64_t cutoff_us,
                                     std::int64_t sessions_per_chunk) {
  return prune_older_than(*sql::over_sqlite(db), cutoff_us, sessions_per_chunk);
}

}  // namespace smtpscope::cli
