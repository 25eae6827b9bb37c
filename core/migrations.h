// Schema migrations: the numbered SQL files of schema/, embedded at build
// time, applied in order inside one transaction each, and recorded in the
// schema_version table. A database whose version is newer than this build
// knows is refused with a clear error rather than touched.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "result.h"
#include "sqlite.h"

namespace smtpscope {

struct Migration {
  int version;
  std::string_view name;
  std::string_view sql;
};

const std::vector<Migration>& embedded_migrations();

// Highest version this build can read and write.
int latest_schema_version();

// Applies every pending migration of `migrations` to db.
Status migrate(sqlite::Database& db, const std::vector<Migration>& migrations);

// Version recorded in db (0 for a new, empty database), read as the 64-bit
// integer SQLite stores. A negative version, which no smtpscope writes, is
// an error naming the database.
Result<std::int64_t> schema_version(sqlite::Database& db);

}  // namespace smtpscope
