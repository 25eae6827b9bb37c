#include "migrations.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>

namespace smtpscope {
namespace {

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The whole 64-bit value: cut to 32 bits, 2^31 read as negative (every
// migration re-run) and 2^32+5 as 5.
Result<std::int64_t> read_version(sqlite::Database& db) {
  auto query = db.prepare(
      "SELECT coalesce(max(version), 0), coalesce(min(version), 0) FROM schema_version");
  if (!query) return query.status();
  auto row = query.value().step();
  if (!row) return row.status();
  const std::int64_t lowest = query.value().column_int(1);
  if (lowest < 0) {
    return Status::error(fmt::format(
        "database {} has schema version {}, which no smtpscope writes; use another database",
        db.path(), lowest));
  }
  return query.value().column_int(0);
}

// Applies one migration under the write lock; another process may have
// applied it meanwhile, so the version is read again inside the transaction.
Status apply(sqlite::Database& db, const Migration& migration) {
  if (Status begun = db.exec("BEGIN IMMEDIATE"); !begun) return begun;
  auto current = read_version(db);
  if (current && current.value() >= migration.version) return db.exec("COMMIT");
  Status applied = current ? db.exec(migration.sql) : current.status();
  if (applied) {
    auto record = db.prepare(
        "INSERT INTO schema_version (version, name, applied_us) VALUES (?1, ?2, ?3)");
    applied = record ? record.value()
                           .bind(1, std::int64_t{migration.version})
                           .bind(2, migration.name)
                           .bind(3, now_us())
                           .run()
                     : record.status();
  }
  if (!applied) {
    (void)db.exec("ROLLBACK");
    return applied.context(fmt::format("migration {}", migration.name));
  }
  return db.exec("COMMIT");
}

}  // namespace

int latest_schema_version() {
  const auto& all = embedded_migrations();
  return all.empty() ? 0 : all.back().version;
}

Result<std::int64_t> schema_version(sqlite::Database& db) { return read_version(db); }

Status migrate(sqlite::Database& db, const std::vector<Migration>& migrations) {
  if (Status created = db.exec(
          "CREATE TABLE IF NOT EXISTS schema_version ("
          " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_us INTEGER NOT NULL)");
      !created) {
    return created.context("create schema_version");
  }
  auto current = schema_version(db);
  if (!current) return current.status();
  const int known = migrations.empty() ? 0 : migrations.back().version;
  if (current.value() > known) {
    return Status::error(fmt::format(
        "database {} has schema version {}, newer than this smtpscope knows ({}); "
        "upgrade smtpscope or use another database",
        db.path(), current.value(), known));
  }
  // Upgrading may rebuild a table (schema 6: ~1.3 s per million events);
  // say so, since a daemon serves nothing meanwhile. A new database is
  // created at once and silently.
  const bool upgrade = current.value() > 0 && current.value() < known;
  if (upgrade) {
    spdlog::info("schema event=upgrading database={} from={} to={}", db.path(), current.value(),
                 known);
  }
  const auto started = std::chrono::steady_clock::now();
  for (const auto& migration : migrations) {
    if (migration.version <= current.value()) continue;
    if (Status applied = apply(db, migration); !applied) return applied;
  }
  if (upgrade) {
    spdlog::info("schema event=upgraded database={} version={} seconds={:.1f}", db.path(), known,
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
  return Status::ok();
}

}  // namespace smtpscope
