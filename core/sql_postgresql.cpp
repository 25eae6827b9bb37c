#include "sql_postgresql.h"

#include <fmt/format.h>

#include <cctype>
#include <cstdlib>
#include <vector>

#include "sql_placeholders.h"

namespace smtpscope::sql {
namespace {

// Where the first word of sql starts (leading spaces and parentheses skipped).
std::size_t word_start(std::string_view sql) {
  std::size_t at = 0;
  while (at < sql.size() && (std::isspace(static_cast<unsigned char>(sql[at])) || sql[at] == '(')) {
    ++at;
  }
  return at;
}

// The first word of sql, upper-cased.
std::string first_word(std::string_view sql) {
  std::string word;
  for (std::size_t at = word_start(sql);
       at < sql.size() && std::isalpha(static_cast<unsigned char>(sql[at])); ++at) {
    word += static_cast<char>(std::toupper(static_cast<unsigned char>(sql[at])));
  }
  return word;
}

// BEGIN IMMEDIATE, DEFERRED or EXCLUSIVE: SQLite's ways to say BEGIN.
bool sqlite_begin(std::string_view sql) {
  if (first_word(sql) != "BEGIN") return false;
  const std::string mode = first_word(sql.substr(word_start(sql) + 5));
  return mode == "IMMEDIATE" || mode == "DEFERRED" || mode == "EXCLUSIVE";
}

bool returns_rows(std::string_view sql) {
  const std::string word = first_word(sql);
  return word == "SELECT" || word == "WITH" || word == "VALUES" || word == "TABLE";
}

class PgConnection;

class PgStatement final : public StatementBackend {
 public:
  PgStatement(PgConnection& connection, std::string sql)
      : connection_(connection), sql_(std::move(sql)), streamed_(returns_rows(sql_)) {}
  ~PgStatement() override { reset(); }

  void bind_int(int index, std::int64_t value) override {
    set(index, ParamType::int8, std::to_string(value));
  }
  void bind_text(int index, std::string_view value) override {
    set(index, ParamType::text, std::string(value));
  }
  void bind_double(int index, double value) override {
    set(index, ParamType::float8, fmt::format("{}", value));
  }
  void bind_null(int index) override { set(index, ParamType::unknown, std::nullopt); }
  Result<bool> step() override;
  void reset() override;

  std::int64_t column_int(int column) const override;
  std::string column_text(int column) const override {
    return std::string(rows_->text(row_, column));
  }
  double column_double(int column) const override {
    return std::strtod(std::string(rows_->text(row_, column)).c_str(), nullptr);
  }
  bool column_is_null(int column) const override { return rows_->is_null(row_, column); }

 private:
  void set(int index, ParamType type, std::optional<std::string> value) {
    if (index < 1) return;
    const auto at = static_cast<std::size_t>(index - 1);
    if (values_.size() <= at) {
      values_.resize(at + 1);
      types_.resize(at + 1, ParamType::unknown);
    }
    values_[at] = std::move(value);
    types_[at] = type;
  }
  Status start();
  Status fetch();
  void finish(bool failed);

  PgConnection& connection_;
  std::string sql_;
  bool streamed_;
  std::vector<std::optional<std::string>> values_;
  std::vector<ParamType> types_;
  enum class State { idle, running, done } state_ = State::idle;
  std::optional<pg::Rows> rows_;
  int row_ = -1;
  std::string cursor_;  // open while streaming
  bool more_ = false;   // the cursor may hold more rows
};

class PgConnection final : public Connection {
 public:
  explicit PgConnection(std::unique_ptr<pg::Connection> connection)
      : connection_(std::move(connection)) {}
  Dialect dialect() const override { return Dialect::postgresql; }

  Status exec(std::string_view sql) override {
    const std::string word = first_word(sql);
    auto done = connection_->exec(sqlite_begin(sql) ? std::string_view("BEGIN") : sql);
    if (!done) return done.status();
    changes_ = done.value().affected();
    if (word == "BEGIN" || word == "START") explicit_ = true;
    if (word == "COMMIT" || word == "END" || word == "ROLLBACK") {
      explicit_ = false;
      implicit_ = false;
    }
    return Status::ok();
  }
  Result<Statement> prepare(std::string_view sql) override {
    return Statement(std::make_unique<PgStatement>(*this, std::string(sql)));
  }
  std::int64_t changes() const override { return changes_; }
  bool in_transaction() const override { return explicit_ || implicit_; }
  const std::string& name() const override { return connection_->url(); }

  pg::Connection& raw() { return *connection_; }
  bool streaming() const { return cursors_ > 0; }
  void set_changes(std::int64_t n) { changes_ = n; }

  // A cursor lives in a transaction: the caller's, or one opened for the
  // cursors that find none, ended when the last of them closes.
  Result<std::string> cursor_opening() {
    if (!in_transaction()) {
      auto begun = connection_->exec("BEGIN");
      if (!begun) return begun.status();
      implicit_ = true;
    }
    ++cursors_;
    return fmt::format("smtpscope_cursor_{}", ++cursor_serial_);
  }
  void cursor_closed(bool failed) {
    if (cursors_ > 0) --cursors_;
    if (!implicit_ || cursors_ > 0) return;
    implicit_ = false;
    (void)connection_->exec(failed ? "ROLLBACK" : "COMMIT");
  }

 private:
  std::unique_ptr<pg::Connection> connection_;
  std::int64_t changes_ = 0;
  bool explicit_ = false;
  bool implicit_ = false;
  int cursors_ = 0;
  std::uint64_t cursor_serial_ = 0;
};

std::int64_t PgStatement::column_int(int column) const {
  const std::string_view text = rows_->text(row_, column);
  if (text == "t") return 1;
  if (text == "f") return 0;
  const std::string value(text);
  if (value.find_first_of(".eE") != std::string::npos) {
    return static_cast<std::int64_t>(std::strtod(value.c_str(), nullptr));
  }
  return std::strtoll(value.c_str(), nullptr, 10);
}

Status PgStatement::start() {
  TranslatedSql translated = translate_placeholders(sql_, types_);
  std::vector<pg::Param> params;
  for (int index : translated.order) {
    const auto at = static_cast<std::size_t>(index - 1);
    const bool bound = at < values_.size() && values_[at];
    params.push_back(bound ? pg::Param::text(*values_[at]) : pg::Param::null());
  }
  if (!streamed_ || connection_.streaming()) {
    auto done = connection_.raw().exec(translated.sql, params);
    if (!done) return done.status();
    connection_.set_changes(done.value().affected());
    rows_ = std::move(done).value();
    row_ = -1;
    more_ = false;
    return Status::ok();
  }
  auto name = connection_.cursor_opening();
  if (!name) return name.status();
  auto declared = connection_.raw().exec(
      fmt::format("DECLARE {} NO SCROLL CURSOR FOR {}", name.value(), translated.sql), params);
  if (!declared) {
    connection_.cursor_closed(true);
    return declared.status();
  }
  cursor_ = name.value();
  return fetch();
}

Status PgStatement::fetch() {
  auto fetched =
      connection_.raw().exec(fmt::format("FETCH FORWARD {} FROM {}", kFetchRows, cursor_));
  if (!fetched) return fetched.status();
  rows_ = std::move(fetched).value();
  row_ = -1;
  more_ = rows_->size() == kFetchRows;
  return Status::ok();
}

void PgStatement::finish(bool failed) {
  if (!cursor_.empty()) {
    if (!failed) (void)connection_.raw().exec("CLOSE " + cursor_);
    cursor_.clear();
    connection_.cursor_closed(failed);
  }
  rows_.reset();
  row_ = -1;
  more_ = false;
}

Result<bool> PgStatement::step() {
  if (state_ == State::done) return false;
  if (state_ == State::idle) {
    state_ = State::running;
    if (Status started = start(); !started) {
      finish(true);
      state_ = State::done;
      return started;
    }
  }
  for (;;) {
    if (rows_ && row_ + 1 < rows_->size()) {
      ++row_;
      return true;
    }
    if (!more_) break;
    if (Status fetched = fetch(); !fetched) {
      finish(true);
      state_ = State::done;
      return fetched;
    }
  }
  finish(false);
  state_ = State::done;
  return false;
}

void PgStatement::reset() {
  finish(false);
  state_ = State::idle;
  values_.clear();
  types_.clear();
}

}  // namespace

std::unique_ptr<Connection> over_postgresql(std::unique_ptr<pg::Connection> connection) {
  return std::make_unique<PgConnection>(std::move(connection));
}

}  // namespace smtpscope::sql
