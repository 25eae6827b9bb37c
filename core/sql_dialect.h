// The one place where the store's SQL differs between SQLite and
// PostgreSQL. Everything else the read commands run is written once, in
// the part both accept: count(*) FILTER (WHERE ...), coalesce, CASE,
// UNION ALL, LIMIT, LIKE with a constant pattern (SQLite's ignores ASCII
// case, PostgreSQL's does not: the patterns match Postfix's lower-case
// text), an
// alias on every subquery in FROM (PostgreSQL 15 needs it), "1 = 1" rather
// than a bare 1 as a condition, integer division of integer columns
// (truncating on both), and a boolean result (x IS NOT NULL) read with
// column_int (0 or 1 on both). Rows come in no order unless an ORDER BY
// gives one; views that print ties sort them in C++.
#pragma once

#include <string>
#include <string_view>

#include "sql_connection.h"

namespace smtpscope::sql {

// RFC 7396 merge patch of JSON text (SQLite's json_patch; the PostgreSQL
// schema defines smtpscope_json_patch, the same on text).
inline std::string_view json_patch_function(Dialect d) {
  return d == Dialect::sqlite ? "json_patch" : "smtpscope_json_patch";
}

// Equal, with NULL equal to NULL (SQLite's IS between two values).
inline std::string_view null_safe_equals(Dialect d) {
  return d == Dialect::sqlite ? " IS " : " IS NOT DISTINCT FROM ";
}

// A text column in ORDER BY, compared byte by byte on both (SQLite's
// default; PostgreSQL's default follows the database's locale).
inline std::string bytewise(Dialect d, std::string_view column) {
  return std::string(column) + (d == Dialect::sqlite ? "" : " COLLATE \"C\"");
}

// Starts a write transaction: SQLite takes the write lock at once (so a
// busy database fails here, before any work); PostgreSQL locks rows as it
// goes.
inline std::string_view begin_write(Dialect d) {
  return d == Dialect::sqlite ? "BEGIN IMMEDIATE" : "BEGIN";
}

// A temporary table of ids for this connection only, named `name`, used
// unqualified (both look in the temporary schema first).
inline std::string create_temp_ids(Dialect d, std::string_view name) {
  return "CREATE TEMP TABLE IF NOT EXISTS " + std::string(name) +
         (d == Dialect::sqlite ? " (id INTEGER PRIMARY KEY)" : " (id bigint PRIMARY KEY)");
}

// After filling a temporary table: PostgreSQL's planner knows nothing of
// it until analysed (and would scan a whole table instead of its index);
// SQLite needs nothing. Empty when there is nothing to run.
inline std::string analyse_temp(Dialect d, std::string_view name) {
  return d == Dialect::sqlite ? "" : "ANALYZE " + std::string(name);
}

}  // namespace smtpscope::sql
