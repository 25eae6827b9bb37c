// Opens the smtpscope database for the command-line views: the path comes
// from --db, else from the configuration file. A missing file or a schema
// newer than this build is a clear error; an older schema is upgraded (which
// needs write access, and says so when the file is read-only for this user).
// A view whose schema is current reads through a read-only connection.
//
// The read commands may instead read a PostgreSQL store (the fleet's, issue
// 16): --db postgresql://..., else the configuration's database.url when it
// is set. The password comes from --password-file, else the configuration's
// database.password_file, else SMTPSCOPE_DB_PASSWORD or PGPASSWORD
// (pg_url.h), never from the URL. The stored analysis there is made on each
// host and forwarded with its sessions: nothing here analyses on PostgreSQL.
#pragma once

#include <memory>
#include <string>

#include "result.h"
#include "sql_connection.h"
#include "sqlite.h"

namespace smtpscope::cli {

struct DatabaseChoice {
  std::string config_path;  // used when db_path is empty
  std::string db_path;
  std::string password_file;  // --password-file: overrides the configuration's
};

// The database file the choice names (--db, else the configuration's; the
// built-in default when the configuration file does not exist). An error is
// in the configuration.
Result<std::string> database_path(const DatabaseChoice& choice);

// Where a read command reads: an SQLite file or a PostgreSQL URL.
struct StoreLocation {
  std::string target;         // a path, or postgresql://... (no password)
  std::string password_file;  // for a URL: empty for none
};

// --db, else the configuration's database.url when set, else its
// database.path; the password file from --password-file, else the
// configuration's. An error is in the configuration or the URL (one with a
// password is refused).
Result<StoreLocation> store_location(const DatabaseChoice& choice);

// A command that works on the local SQLite file only, given a PostgreSQL
// URL: a usage error naming the command and where its file is configured.
Status needs_local_file(const std::string& command, const std::string& target);

enum class Access {
  read,              // a view: sessions, servers
  read_and_record,   // an analysis that stores its conclusions when the file is writable
  write,             // maintenance: a read-only file is an error
};

// The database at path, opened for access. With Access::read_and_record the
// connection is read-only (Database::read_only()) when the file is.
Result<std::unique_ptr<sqlite::Database>> open_database_at(const std::string& path, Access access);

// The store at location, opened for access: an SQLite file as
// open_database_at does, or a PostgreSQL database whose schema is current
// (an older one is upgraded, a newer or missing one refused). Errors name
// the URL without its password.
Result<std::unique_ptr<sql::Connection>> open_store(const StoreLocation& location, Access access);

}  // namespace smtpscope::cli
