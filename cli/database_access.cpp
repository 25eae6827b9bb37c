#include "database_access.h"

#include <fmt/format.h>

#include <filesystem>

#include "config.h"
#include "migrations.h"
#include "pg_schema.h"
#include "pg_url.h"
#include "sql_postgresql.h"

namespace smtpscope::cli {
namespace {

constexpr int busy_timeout_ms = 5000;

// SQLite refused to write while reading: in WAL mode a reader needs the
// WAL index (path-shm), created beside the file when it is missing.
Status unreadable_read_only(const std::string& path, const std::string& detail) {
  const std::filesystem::path file(path);
  const std::string wal_index = path + "-shm";
  std::string hint;
  if (!std::filesystem::exists(wal_index)) {
    hint = fmt::format("; to read it, SQLite must create {} (its WAL index): give this user write "
                       "access to {}, or read while smtpscope-milter or smtpscope-policyd has it "
                       "open",
                       wal_index, file.parent_path().empty() ? "." : file.parent_path().string());
  }
  return Status::error(fmt::format("database {} is read-only for this user and could not be "
                                   "read ({}){}",
                                   path, detail, hint));
}

Status upgrade_refused(const std::string& path, std::int64_t version) {
  return Status::error(fmt::format(
      "database {} is read-only for this user and has schema version {}; this smtpscope reads "
      "version {} and must upgrade it first: run it once as a user that can write the file "
      "(e.g. the daemons' user), or start smtpscope-milter, which upgrades it",
      path, version, latest_schema_version()));
}

// Opens for writing, upgrading an older schema.
Result<std::unique_ptr<sqlite::Database>> open_writable(const std::string& path, std::int64_t version,
                                                        Access access) {
  auto db = sqlite::Database::open(path, false, busy_timeout_ms);
  if (!db) return db.status();
  const bool current = version == latest_schema_version();
  if (db.value()->read_only()) {
    if (!current) return upgrade_refused(path, version);
    if (access == Access::write) {
      return Status::error(fmt::format("database {} is read-only for this user", path));
    }
    return std::move(db).value();
  }
  if (!current) {
    if (Status migrated = migrate(*db.value(), embedded_migrations()); !migrated) {
      if (db.value()->refused_write()) return upgrade_refused(path, version);
      return migrated.context("upgrade the schema of " + path);
    }
  }
  return std::move(db).value();
}

// Connects, then checks (and if older upgrades) the schema.
Result<std::unique_ptr<sql::Connection>> open_postgresql(const StoreLocation& location) {
  auto url = pg::parse_url(location.target);
  if (!url) return url.status();
  auto password =
      pg::resolve_password(pg::PasswordSources::from_environment(location.password_file));
  if (!password) return password.status();
  auto connection = pg::Connection::open(url.value(), password.value());
  if (!connection) return connection.status();
  auto& db = *connection.value();
  auto version = pg::schema_version(db);
  if (!version) return version.status();
  const int latest = pg::latest_version(pg::embedded_migrations());
  if (version.value() == 0) {
    return Status::error(fmt::format(
        "{} holds no smtpscope schema (fill it with `smtpscope db copy --to {}`, or point the "
        "daemons' database.url at it)",
        db.url(), db.url()));
  }
  if (version.value() > latest) {
    return Status::error(fmt::format("{} has schema version {}, newer than this smtpscope knows "
                                     "({}); upgrade smtpscope",
                                     db.url(), version.value(), latest));
  }
  if (version.value() < latest) {
    if (Status migrated = pg::migrate(db, pg::embedded_migrations()); !migrated) return migrated;
  }
  return sql::over_postgresql(std::move(connection).value());
}

}  // namespace

Result<StoreLocation> store_location(const DatabaseChoice& choice) {
  StoreLocation location{choice.db_path, choice.password_file};
  if (location.target.empty()) {
    auto config = load_config_or_defaults(choice.config_path);
    if (!config) return config.status();
    const auto& database = config.value().database;
    location.target = database.url.empty() ? database.path : database.url;
    if (location.password_file.empty()) location.password_file = database.password_file;
  }
  // A malformed URL (or one with a password) is a usage error, found before
  // any command starts.
  if (pg::is_pg_url(location.target)) {
    if (auto url = pg::parse_url(location.target); !url) return url.status();
  }
  return location;
}

Status needs_local_file(const std::string& command, const std::string& target) {
  if (!pg::is_pg_url(target)) return Status::ok();
  return Status::error(fmt::format(
      "{} works on this host's SQLite file (database.path), not on {}: each host records and "
      "analyses into its own file, which is forwarded to PostgreSQL; name the file with --db",
      command, pg::redact_url_text(target)));
}

Result<std::unique_ptr<sql::Connection>> open_store(const StoreLocation& location, Access access) {
  if (pg::is_pg_url(location.target)) return open_postgresql(location);
  auto db = open_database_at(location.target, access);
  if (!db) return db.status();
  return sql::over_sqlite(std::move(db).value());
}

Result<std::string> database_path(const DatabaseChoice& choice) {
  if (!choice.db_path.empty()) return choice.db_path;
  auto config = load_config_or_defaults(choice.config_path);
  if (!config) return config.status();
  return config.value().database.path;
}

Result<std::unique_ptr<sqlite::Database>> open_database_at(const std::string& path, Access access) {
  if (!std::filesystem::exists(path)) {
    return Status::error(fmt::format(
        "no database at {} (start smtpscope-milter first, or name one with --db)", path));
  }
  auto reader = sqlite::Database::open_read_only(path, busy_timeout_ms);
  if (!reader) return reader.status();
  auto version = schema_version(*reader.value());
  if (!version) {
    if (reader.value()->refused_write()) return unreadable_read_only(path, version.message());
    return version.status().context(fmt::format("{} is not an smtpscope database", path));
  }
  if (version.value() > latest_schema_version()) {
    return Status::error(fmt::format("database {} has schema version {}, newer than this "
                                     "smtpscope knows ({}); upgrade smtpscope",
                                     path, version.value(), latest_schema_version()));
  }
  if (access == Access::read && version.value() == latest_schema_version()) {
    return std::move(reader).value();
  }
  reader.value().reset();
  return open_writable(path, version.value(), access);
}

}  // namespace smtpscope::cli
