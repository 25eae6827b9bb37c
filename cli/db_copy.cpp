#include "db_copy.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "database_access.h"
#include "migrations.h"
#include "pg_copy_rows.h"
#include "pg_schema.h"
#include "pg_url.h"
#include "text_escape.h"

namespace smtpscope::cli {
namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;
// Rows per COPY statement: bounds the memory of one chunk (event rows are
// a few hundred bytes) while keeping statements few.
constexpr std::int64_t kRowsPerChunk = 20000;

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += ", ";
    out += name;
  }
  return out;
}

// Fails when `to` already holds rows of any copied table (analysis_state
// starts with its two watermarks, which the copy replaces).
Status require_empty(pg::Connection& to) {
  for (const auto& table : copied_tables()) {
    if (table.name == "analysis_state") continue;
    auto rows = to.exec(fmt::format("SELECT EXISTS (SELECT 1 FROM {})", table.name));
    if (!rows) return rows.status();
    if (rows.value().text(0, 0) == "t") {
      return Status::error(fmt::format(
          "{} already holds rows ({}); db copy fills an empty database only (the ids of two "
          "histories would collide), so nothing was copied",
          to.url(), table.name));
    }
  }
  auto cleared = to.exec("DELETE FROM analysis_state");
  return cleared ? Status::ok() : cleared.status();
}

Result<std::int64_t> count_rows(sqlite::Database& from, const CopiedTable& table) {
  auto query = from.prepare(fmt::format("SELECT count(*) FROM {}", table.name));
  if (!query) return query.status();
  auto row = query.value().step();
  if (!row) return row.status();
  return query.value().column_int(0);
}

// One table's rows, chunk by chunk; counts replaced values into counts.
Result<std::int64_t> copy_table(sqlite::Database& from, pg::Connection& to,
                                const CopiedTable& table, CopyCounts& counts,
                                const CopyProgress& progress) {
  auto total = count_rows(from, table);
  if (!total) return total.status();
  const std::string columns = join(table.columns);
  auto query = from.prepare(
      fmt::format("SELECT {} FROM {} ORDER BY {}", columns, table.name, table.order_by));
  if (!query) return query.status();
  const std::string copy_sql = fmt::format("COPY {} ({}) FROM STDIN", table.name, columns);
  auto copied = pg::copy_query_rows(
      query.value(), to,
      pg::CopyStream{copy_sql, static_cast<int>(table.columns.size()), kRowsPerChunk,
                     &counts.replaced_values, [&](std::int64_t sent) {
                       if (progress) progress(table.name, sent, total.value());
                     }});
  if (!copied) return copied.status().context(fmt::format("copy {}", table.name));
  if (table.has_identity) {
    // New rows written to PostgreSQL later get ids after the copied ones.
    auto moved = to.exec(fmt::format(
        "SELECT setval(pg_get_serial_sequence('{0}', 'id'), max(id)) FROM {0}", table.name));
    if (!moved) return moved.status();
  }
  return copied;
}

Status copy_all(sqlite::Database& from, pg::Connection& to, CopyCounts& counts,
                const CopyProgress& progress) {
  // A second copy started meanwhile waits here, then finds the rows.
  if (auto locked = to.exec("LOCK TABLE sessions IN EXCLUSIVE MODE"); !locked) {
    return locked.status();
  }
  if (Status empty = require_empty(to); !empty) return empty;
  for (const auto& table : copied_tables()) {
    auto copied = copy_table(from, to, table, counts, progress);
    if (!copied) return copied.status();
    counts.rows.emplace_back(table.name, copied.value());
    counts.total += copied.value();
  }
  return Status::ok();
}

Result<std::unique_ptr<pg::Connection>> connect(const DbCopyOptions& options, int& exit_code) {
  exit_code = exit_usage;
  auto url = pg::parse_url(options.to);
  if (!url) return url.status();
  auto password =
      pg::resolve_password(pg::PasswordSources::from_environment(options.password_file));
  if (!password) return password.status();
  exit_code = exit_failure;
  auto connection = pg::Connection::open(url.value(), password.value());
  if (!connection) return connection.status();
  if (Status migrated = pg::migrate(*connection.value(), pg::embedded_migrations()); !migrated) {
    return migrated;
  }
  return connection;
}

CopyProgress terminal_progress() {
  return [](const std::string& table, std::int64_t done, std::int64_t total) {
    std::fprintf(stderr, "\r\033[Kcopying %s: %lld / %lld rows", table.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total));
    std::fflush(stderr);
  };
}

}  // namespace

const std::vector<CopiedTable>& copied_tables() {
  static const std::vector<CopiedTable> tables = {
      {"sessions",
       {"id", "stream", "client_addr", "client_port", "client_name", "client_ptr", "server_addr",
        "server_port", "connect_us", "close_us", "helo", "helo_count", "transactions", "partial",
        "protocol", "sources", "join_method", "host"},
       "id",
       true},
      {"transactions",
       {"id", "session_id", "seq", "mail_from", "started_us", "ended_us", "rcpt_accepted",
        "rcpt_rejected", "data_us", "queue_id", "body_bytes", "outcome", "message_bytes"},
       "id",
       true},
      {"attribute_sets", {"id", "attributes"}, "id", true},
      {"event_rows",
       {"id", "session_id", "transaction_id", "source", "stage", "time_us", "argument",
        "attributes", "set_id", "base_id"},
       "id",
       true},
      {"drops", {"id", "time_us", "source", "dropped"}, "id", true},
      {"ingest_files",
       {"id", "fingerprint", "path", "\"offset\"", "lines", "parsed", "skipped", "malformed",
        "updated_us", "cursor"},
       "id",
       true},
      {"remote_events",
       {"id", "time_us", "server_name", "server_addr", "server_port", "kind", "state", "status",
        "queue_id", "recipient", "dsn", "probe", "reason"},
       "id",
       true},
      {"fingerprints", {"id", "features"}, "id", false},
      {"client_timing",
       {"client_addr", "last_connect_us", "sessions", "mean_interval_s", "regular_every_s",
        "burst"},
       "client_addr",
       false},
      // Its triggers fill client_day_shapes row by row.
      {"session_analysis",
       {"session_id", "client_addr", "host", "connect_us", "stages", "pattern", "patterns",
        "fingerprint", "helo_quirks", "transactions", "aborted", "delivered", "local",
        "analysed_us"},
       "session_id",
       false},
      {"analysis_state", {"key", "value"}, "key", false},
      {"analysis_open", {"session_id"}, "session_id", false},
  };
  return tables;
}

Result<CopyCounts> copy_database(sqlite::Database& from, pg::Connection& to,
                                 const CopyProgress& progress) {
  auto from_version = smtpscope::schema_version(from);
  if (!from_version) return from_version.status();
  auto to_version = pg::schema_version(to);
  if (!to_version) return to_version.status();
  if (from_version.value() != to_version.value()) {
    return Status::error(
        fmt::format("{} is at schema version {} and {} at {}; both must be at the same version",
                    from.path(), from_version.value(), to.url(), to_version.value()));
  }
  if (auto begun = to.exec("BEGIN"); !begun) return begun.status();
  CopyCounts counts;
  if (Status copied = copy_all(from, to, counts, progress); !copied) {
    (void)to.exec("ROLLBACK");
    return copied;
  }
  if (auto committed = to.exec("COMMIT"); !committed) return committed.status();
  return counts;
}

int run_db_copy(const DbCopyOptions& options) {
  // The SQLite file first: a wrong --db leaves the server untouched.
  auto from = open_database_at(options.database, Access::read);
  if (!from) {
    std::cerr << "smtpscope: db copy: " << from.message() << '\n';
    return exit_failure;
  }
  int exit_code = exit_failure;
  auto to = connect(options, exit_code);
  if (!to) {
    std::cerr << "smtpscope: db copy: " << to.message() << '\n';
    return exit_code;
  }
  const bool show_progress = !options.quiet && ::isatty(STDERR_FILENO);
  const auto started = std::chrono::steady_clock::now();
  auto copied = copy_database(*from.value(), *to.value(),
                              show_progress ? terminal_progress() : CopyProgress{});
  if (show_progress) std::fprintf(stderr, "\r\033[K");
  if (!copied) {
    std::cerr << "smtpscope: db copy: " << copied.message()
              << " (the PostgreSQL database is unchanged)\n";
    return exit_failure;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  for (const auto& [table, rows] : copied.value().rows) {
    std::cout << fmt::format("{:<17} {:>12}\n", table, rows);
  }
  std::cout << fmt::format("copied {} rows from {} to {} in {:.1f} s ({:.0f} rows/s)\n",
                           copied.value().total, printable(options.database), to.value()->url(),
                           seconds,
                           seconds > 0 ? static_cast<double>(copied.value().total) / seconds : 0.0);
  if (copied.value().replaced_values > 0) {
    std::cout << fmt::format(
        "{} {} held bytes PostgreSQL text cannot hold (not UTF-8, or NUL), stored with "
        "U+FFFD in their place\n",
        copied.value().replaced_values, copied.value().replaced_values == 1 ? "value" : "values");
  }
  return 0;
}

}  // namespace smtpscope::cli
