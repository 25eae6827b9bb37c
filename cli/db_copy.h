// `smtpscope db copy --to postgresql://...`: one host's SQLite history into
// a PostgreSQL store. The PostgreSQL database gets the schema first
// (pg_schema.h); then every table's rows are sent with COPY, in id order,
// keeping their ids, all in one transaction: an interrupted or failed copy
// leaves the PostgreSQL database as it was, and a finished one holds every
// row. client_day_shapes is not copied: the triggers of session_analysis
// fill it as its rows arrive, so it is what PostgreSQL itself counts.
//
// Only into an empty store: a database that already holds sessions, events
// or analysis is refused untouched (a second copy adds nothing), since ids
// of two histories would collide. Both databases must be at the same
// schema version (an older SQLite file is upgraded first, as by every
// command).
//
// Text PostgreSQL cannot hold (bytes that are not UTF-8, NUL) becomes
// U+FFFD, and the copy says how many values changed. The password comes
// from --password-file, SMTPSCOPE_DB_PASSWORD or PGPASSWORD (pg_url.h);
// messages show the URL without it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "pg_connection.h"
#include "result.h"
#include "sqlite.h"

namespace smtpscope::cli {

// One table as copied: its name and columns (the same in both schemas), and
// the order its rows go in.
struct CopiedTable {
  std::string name;
  std::vector<std::string> columns;  // as SQL names ("offset" quoted)
  std::string order_by;
  bool has_identity = false;  // an id column whose sequence follows the copied ids
};

// The tables of schema 9, in the order they are copied.
const std::vector<CopiedTable>& copied_tables();

struct CopyCounts {
  std::vector<std::pair<std::string, std::int64_t>> rows;  // per table, in copy order
  std::int64_t total = 0;
  std::int64_t replaced_values = 0;  // values with bytes PostgreSQL text cannot hold
};

// Called after each chunk: table, rows of it copied so far, its row count.
using CopyProgress = std::function<void(const std::string&, std::int64_t, std::int64_t)>;

// Copies every table of `from` into `to` (whose schema is current), in one
// transaction; refuses a `to` that already holds rows.
Result<CopyCounts> copy_database(sqlite::Database& from, pg::Connection& to,
                                 const CopyProgress& progress = nullptr);

struct DbCopyOptions {
  std::string database;       // the SQLite file
  std::string to;             // postgresql://...
  std::string password_file;  // optional
  bool quiet = false;
};

// Exit status 0, 1 (database or server), 2 (usage: URL, password file).
int run_db_copy(const DbCopyOptions& options);

}  // namespace smtpscope::cli
