// sql::Connection over an SQLite file (sql_connection.h): a thin forward to
// sqlite::Database and sqlite::Statement.
#include "sql_connection.h"
#include "sqlite.h"

namespace smtpscope::sql {
namespace {

class SqliteStatement final : public StatementBackend {
 public:
  explicit SqliteStatement(sqlite::Statement statement) : statement_(std::move(statement)) {}
  void bind_int(int index, std::int64_t value) override { statement_.bind(index, value); }
  void bind_text(int index, std::string_view value) override { statement_.bind(index, value); }
  void bind_double(int index, double value) override {
    statement_.bind(index, std::optional<double>(value));
  }
  void bind_null(int index) override { statement_.bind_null(index); }
  Result<bool> step() override { return statement_.step(); }
  void reset() override { statement_.reset(); }
  std::int64_t column_int(int column) const override { return statement_.column_int(column); }
  std::string column_text(int column) const override { return statement_.column_text(column); }
  double column_double(int column) const override { return statement_.column_double(column); }
  bool column_is_null(int column) const override { return statement_.column_is_null(column); }

 private:
  sqlite::Statement statement_;
};

class SqliteConnection final : public Connection {
 public:
  SqliteConnection(std::unique_ptr<sqlite::Database> owned, sqlite::Database& db)
      : owned_(std::move(owned)), db_(db) {}
  Dialect dialect() const override { return Dialect::sqlite; }
  Status exec(std::string_view sql) override {
    Status done = db_.exec(sql);
    if (!done) return done.context(db_.path());
    return done;
  }
  Result<Statement> prepare(std::string_view sql) override {
    auto prepared = db_.prepare(sql);
    if (!prepared) return prepared.status().context(db_.path());
    return Statement(std::make_unique<SqliteStatement>(std::move(prepared).value()));
  }
  std::int64_t changes() const override { return db_.changes(); }
  bool in_transaction() const override { return db_.in_transaction(); }
  const std::string& name() const override { return db_.path(); }
  sqlite::Database* sqlite() override { return &db_; }

 private:
  std::unique_ptr<sqlite::Database> owned_;
  sqlite::Database& db_;
};

}  // namespace

std::unique_ptr<Connection> over_sqlite(std::unique_ptr<sqlite::Database> db) {
  sqlite::Database& borrowed = *db;
  return std::make_unique<SqliteConnection>(std::move(db), borrowed);
}

std::unique_ptr<Connection> over_sqlite(sqlite::Database& db) {
  return std::make_unique<SqliteConnection>(nullptr, db);
}

}  // namespace smtpscope::sql
