// Thin RAII wrappers over the SQLite C API: a Database connection and its
// prepared Statements. Every SQLite return code is turned into a Status that
// names the operation and SQLite's message. Not thread-safe: one Database and
// its Statements belong to one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"

namespace smtpscope::sqlite {

class Statement;

class Database {
 public:
  // Opens (creating if allowed) the file at path; ":memory:" for tests.
  static Result<std::unique_ptr<Database>> open(const std::string& path, bool create,
                                                int busy_timeout_ms);
  // Opens an existing file that nothing will be written to through this
  // connection (SQLite may still create the WAL index, path-shm, to read).
  static Result<std::unique_ptr<Database>> open_read_only(const std::string& path,
                                                         int busy_timeout_ms);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Status exec(std::string_view sql);
  Result<Statement> prepare(std::string_view sql);
  // Prepares each statement in order; the first failure is returned.
  Result<std::vector<Statement>> prepare_all(std::initializer_list<std::string_view> sql);
  std::int64_t last_insert_rowid() const;
  int changes() const;
  // True when the last call failed because another connection held a lock
  // (SQLITE_BUSY or SQLITE_LOCKED).
  bool busy() const;
  // True when the last call failed because something could not be written:
  // a read-only connection or file, or WAL files it could not create
  // (SQLITE_READONLY and its extended codes).
  bool refused_write() const;
  // True when nothing can be written through this connection: opened
  // read-only, or the file is read-only for this process (SQLite then
  // opens it read-only even when asked to read and write).
  bool read_only() const;
  // True between BEGIN and COMMIT/ROLLBACK.
  bool in_transaction() const;
  const std::string& path() const { return path_; }
  sqlite3* handle() { return db_; }

  // Error text for code with this connection's message attached.
  std::string describe(int code) const;

 private:
  static Result<std::unique_ptr<Database>> open_with(const std::string& path, int mode,
                                                     int busy_timeout_ms);
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3* db_;
  std::string path_;
};

// A prepared statement, reusable: bind, step until done, then reset().
class Statement {
 public:
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  ~Statement();

  // Binds are 1-based like SQLite's; an empty optional binds NULL.
  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, std::int64_t number);
  Statement& bind(int index, const std::optional<std::string>& text);
  Statement& bind(int index, std::optional<std::int64_t> number);
  Statement& bind(int index, std::optional<double> number);
  Statement& bind_null(int index);

  // Runs to completion (for INSERT/UPDATE), then resets the statement.
  Status run();
  // Steps once: true when a row is available, false when done.
  Result<bool> step();
  void reset();

  std::int64_t column_int(int column) const;
  std::string column_text(int column) const;
  double column_double(int column) const;
  bool column_is_null(int column) const;
  // True when the value is a floating-point number (its text would keep
  // only 15 digits: read it with column_double to keep them all).
  bool column_is_real(int column) const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, Database* db) : stmt_(stmt), db_(db) {}
  Status bind_status() const;
  sqlite3_stmt* stmt_ = nullptr;
  Database* db_ = nullptr;
  int bind_error_ = SQLITE_OK;
};

}  // namespace smtpscope::sqlite
