// Opens the smtpscope database for the command-line views: the path comes
// from --db, else from the configuration file. A missing file or a schema
// newer than this build is a clear error; an older schema is upgraded (which
// needs write access, and says so when the file is read-only for this user).
// A view whose schema is current reads through a read-only connection.
#pragma once

#include <memory>
#include <string>

#include "result.h"
#include "sqlite.h"

namespace smtpscope::cli {

struct DatabaseChoice {
  std::string config_path;  // used when db_path is empty
  std::string db_path;
};

// The database file the choice names (--db, else the configuration's; the
// built-in default when the configuration file does not exist). An error is
// in the configuration.
Result<std::string> database_path(const DatabaseChoice& choice);

enum class Access {
  read,              // a view: sessions, servers
  read_and_record,   // an analysis that stores its conclusions when the file is writable
  write,             // maintenance: a read-only file is an error
};

// The database at path, opened for access. With Access::read_and_record the
// connection is read-only (Database::read_only()) when the file is.
Result<std::unique_ptr<sqlite::Database>> open_database_at(const std::string& path, Access access);

}  // namespace smtpscope::cli
