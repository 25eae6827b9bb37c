// SQLite's placeholders in PostgreSQL's form: the store's SQL is written
// once with ?N (or ?, numbered as SQLite does: one more than the largest
// so far), and the PostgreSQL backend sends it with $1, $2... A pure
// function, so its cases are unit-tested without a server.
//
// Each distinct ?N becomes one $k, numbered in order of first appearance,
// so parameters the SQL does not use (SQLite leaves them NULL) are not sent
// (PostgreSQL cannot type a parameter no expression uses). Each $k carries
// an explicit cast from the type bound to it (int8, text, float8), so
// "?1 IS NULL" and "?1 * 86400000000" have a type; a NULL bound without a
// type is left for PostgreSQL to infer. Question marks inside '...'
// literals, "..." identifiers and -- or /* */ comments are left alone.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace smtpscope::sql {

enum class ParamType { unknown, int8, text, float8 };

struct TranslatedSql {
  std::string sql;
  // order[k] is the 1-based SQLite index bound to $k+1.
  std::vector<int> order;
};

// types[i] is the type bound to SQLite index i+1 (unknown beyond its end).
TranslatedSql translate_placeholders(std::string_view sql, const std::vector<ParamType>& types);

}  // namespace smtpscope::sql
