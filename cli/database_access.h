// Opens the smtpscope database for the command-line views: the path comes
// from --db, else from the configuration file. A missing file or a schema
// newer than this build is a clear error; an older schema is upgraded.
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

Result<std::unique_ptr<sqlite::Database>> open_for_reading(const DatabaseChoice& choice);

// The database file the choice names (--db, else the configuration's).
Result<std::string> database_path(const DatabaseChoice& choice);

}  // namespace smtpscope::cli
