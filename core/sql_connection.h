// One way to read and write the store whichever backend holds it: an SQLite
// file (the embedded default) or a PostgreSQL database (the fleet store).
// Statement has the shape of sqlite::Statement (bind by 1-based index, an
// empty optional binds NULL; step until done; reset to run again), so code
// written against SQLite changes little. SQL is written with SQLite's
// placeholders (?1, ?2 or ?); the PostgreSQL backend translates them
// (sql_placeholders.h). SQL that differs between the dialects is chosen in
// sql_dialect.h, nowhere else.
//
// Promises: every failure is a Status naming the database (the file, or the
// URL without its password) and the backend's message (SQLSTATE on
// PostgreSQL). A SELECT stepped on PostgreSQL streams in batches through a
// cursor (never the whole result in memory; one stepped while another
// streams is a per-row lookup and is read whole: sql_postgresql.h), inside
// the caller's transaction or, outside one, a transaction of its own that
// ends when the last open cursor is done. Not thread-safe: a Connection and
// its Statements belong to one thread at a time; Statements must not
// outlive their Connection.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "result.h"

namespace smtpscope::sqlite {
class Database;
}

namespace smtpscope::sql {

enum class Dialect { sqlite, postgresql };

// What a backend implements for one prepared statement (see Statement).
class StatementBackend {
 public:
  virtual ~StatementBackend() = default;
  virtual void bind_int(int index, std::int64_t value) = 0;
  virtual void bind_text(int index, std::string_view value) = 0;
  virtual void bind_double(int index, double value) = 0;
  virtual void bind_null(int index) = 0;
  virtual Result<bool> step() = 0;
  virtual void reset() = 0;
  virtual std::int64_t column_int(int column) const = 0;
  virtual std::string column_text(int column) const = 0;
  virtual double column_double(int column) const = 0;
  virtual bool column_is_null(int column) const = 0;
};

class Statement {
 public:
  explicit Statement(std::unique_ptr<StatementBackend> backend) : backend_(std::move(backend)) {}

  Statement& bind(int index, std::string_view text);
  Statement& bind(int index, const std::string& text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, const char* text) { return bind(index, std::string_view(text)); }
  Statement& bind(int index, std::int64_t number);
  Statement& bind(int index, const std::optional<std::string>& text);
  Statement& bind(int index, std::optional<std::int64_t> number);
  Statement& bind(int index, std::optional<double> number);
  Statement& bind_null(int index);

  // Runs to completion (INSERT/UPDATE/DELETE), then resets the statement.
  Status run();
  // Steps once: true when a row is available, false when done.
  Result<bool> step() { return backend_->step(); }
  // Ends the statement's run (its cursor on PostgreSQL) and clears the binds.
  void reset() { backend_->reset(); }

  // A boolean column reads as 0 or 1 on both backends.
  std::int64_t column_int(int column) const { return backend_->column_int(column); }
  std::string column_text(int column) const { return backend_->column_text(column); }
  double column_double(int column) const { return backend_->column_double(column); }
  bool column_is_null(int column) const { return backend_->column_is_null(column); }

 private:
  std::unique_ptr<StatementBackend> backend_;
};

class Connection {
 public:
  virtual ~Connection() = default;
  virtual Dialect dialect() const = 0;
  // One statement without parameters (BEGIN, COMMIT, DDL...).
  virtual Status exec(std::string_view sql) = 0;
  virtual Result<Statement> prepare(std::string_view sql) = 0;
  // Rows changed by the last exec() or Statement::run() of this connection.
  virtual std::int64_t changes() const = 0;
  // True between an exec("BEGIN...") and its COMMIT/ROLLBACK.
  virtual bool in_transaction() const = 0;
  // For messages: the file's path, or the URL without its password.
  virtual const std::string& name() const = 0;
  // The SQLite database underneath, for what only SQLite does (the stored
  // analysis is made on each host, in its file); nullptr on PostgreSQL.
  virtual sqlite::Database* sqlite() { return nullptr; }
};

// An SQLite database as a Connection: owned, or borrowed (the caller keeps
// it alive for the Connection's lifetime).
std::unique_ptr<Connection> over_sqlite(std::unique_ptr<sqlite::Database> db);
std::unique_ptr<Connection> over_sqlite(sqlite::Database& db);

}  // namespace smtpscope::sql
