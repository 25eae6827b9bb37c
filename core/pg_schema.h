// The PostgreSQL schema: the migrations of schema/pg/ (embedded at build
// time), applied on connect like SQLite's (migrations.h) and recorded in the
// same schema_version table with the same version numbers: a PostgreSQL
// database at version 9 holds what an SQLite one at 9 does. A file of
// schema/pg/ may reach its version from several SQLite steps at once (009
// creates everything at 9). Several programs may connect at once: one
// applies the missing migrations under a transaction-scoped advisory lock,
// the others wait for it and find them applied. A database newer than this
// build is refused untouched; a failed migration leaves the database as it
// was (PostgreSQL's DDL is transactional).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "migrations.h"
#include "pg_connection.h"
#include "result.h"

namespace smtpscope::pg {

// schema/pg/NNN_name.sql, in version order.
const std::vector<Migration>& embedded_migrations();

// Highest version these migrations reach (0 when there are none).
int latest_version(const std::vector<Migration>& migrations);

// Version recorded in the database (0 for one without schema_version).
Result<std::int64_t> schema_version(Connection& db);

// Applies every migration of `migrations` newer than the database's version,
// all in one transaction. Errors name the URL (without password) and the
// migration.
Status migrate(Connection& db, const std::vector<Migration>& migrations);

// The statements of an SQL script, for the extended protocol's one statement
// per call: split at semicolons outside quotes ('...', "..."), dollar quotes
// ($tag$...$tag$) and comments (-- and /* */), each trimmed; empty ones left
// out.
std::vector<std::string> split_statements(std::string_view script);

}  // namespace smtpscope::pg
