#include "sqlite.h"

#include <fmt/format.h>

namespace smtpscope::sqlite {

namespace {

// A statement that changes more than 64 KiB of pages (SQLite's default)
// moves its statement journal to a temporary file, where every later
// statement of the transaction writes each page it changes again, one
// system call per page: a pass of the stored analysis (an INSERT with its
// triggers per session) wrote 1.2 GB to /var/tmp for a 10 MB database.
// In memory up to 16 MiB, a statement that large (prune's deletes) only
// then goes to a file.
constexpr int statement_journal_in_memory_bytes = 16 << 20;

// SQLite's memory statistics take a global mutex on every allocation; the
// writer thread allocates for each row (measured: ~10% of its time in
// pthread_mutex_lock/unlock, bench/README.md). Both settings are only
// possible before SQLite initialises, so on the first open.
void configure_sqlite_once() {
  static const bool configured = [] {
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, statement_journal_in_memory_bytes);
    return true;
  }();
  (void)configured;
}

}  // namespace

Result<std::unique_ptr<Database>> Database::open(const std::string& path, bool create,
                                                 int busy_timeout_ms) {
  return open_with(path, SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0),
                   busy_timeout_ms);
}

Result<std::unique_ptr<Database>> Database::open_read_only(const std::string& path,
                                                           int busy_timeout_ms) {
  return open_with(path, SQLITE_OPEN_READONLY, busy_timeout_ms);
}

Result<std::unique_ptr<Database>> Database::open_with(const std::string& path, int mode,
                                                      int busy_timeout_ms) {
  configure_sqlite_once();
  sqlite3* db = nullptr;
  const int flags = mode | SQLITE_OPEN_NOMUTEX;
  const int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close(db);
    return Status::error(fmt::format("open database {}: {}", path, message));
  }
  sqlite3_extended_result_codes(db, 1);
  sqlite3_busy_timeout(db, busy_timeout_ms);
  return std::unique_ptr<Database>(new Database(db, path));
}

Database::~Database() { sqlite3_close_v2(db_); }

bool Database::busy() const {
  const int code = sqlite3_errcode(db_) & 0xff;
  return code == SQLITE_BUSY || code == SQLITE_LOCKED;
}

bool Database::refused_write() const {
  return (sqlite3_errcode(db_) & 0xff) == SQLITE_READONLY;
}

bool Database::read_only() const { return sqlite3_db_readonly(db_, "main") == 1; }

bool Database::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

std::string Database::describe(int code) const {
  return fmt::format("{} ({})", sqlite3_errmsg(db_), sqlite3_errstr(code));
}

Status Database::exec(std::string_view sql) {
  char* error = nullptr;
  const std::string text(sql);
  const int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &error);
  if (rc == SQLITE_OK) return Status::ok();
  std::string message = error ? error : sqlite3_errstr(rc);
  sqlite3_free(error);
  return Status::error(fmt::format("{} [{}]", message, sqlite3_errstr(rc)));
}

Result<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                    SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
  if (rc != SQLITE_OK) {
    return Status::error(fmt::format("prepare \"{}\": {}", sql.substr(0, 60), describe(rc)));
  }
  return Statement(stmt, this);
}

Result<std::vector<Statement>> Database::prepare_all(std::initializer_list<std::string_view> sql) {
  std::vector<Statement> prepared;
  prepared.reserve(sql.size());
  for (std::string_view text : sql) {
    auto statement = prepare(text);
    if (!statement) return statement.status();
    prepared.push_back(std::move(statement).value());
  }
  return prepared;
}

std::int64_t Database::last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }
int Database::changes() const { return sqlite3_changes(db_); }

Statement::Statement(Statement&& other) noexcept
    : stmt_(other.stmt_), db_(other.db_), bind_error_(other.bind_error_) {
  other.stmt_ = nullptr;
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = other.stmt_;
    db_ = other.db_;
    bind_error_ = other.bind_error_;
    other.stmt_ = nullptr;
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Statement& Statement::bind(int index, std::string_view text) {
  const int rc = sqlite3_bind_text64(stmt_, index, text.data(), text.size(), SQLITE_TRANSIENT,
                                     SQLITE_UTF8);
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
  return *this;
}

Statement& Statement::bind(int index, std::int64_t number) {
  const int rc = sqlite3_bind_int64(stmt_, index, number);
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
  return *this;
}

Statement& Statement::bind(int index, const std::optional<std::string>& text) {
  return text ? bind(index, std::string_view(*text)) : bind_null(index);
}

Statement& Statement::bind(int index, std::optional<std::int64_t> number) {
  return number ? bind(index, *number) : bind_null(index);
}

Statement& Statement::bind(int index, std::optional<double> number) {
  if (!number) return bind_null(index);
  const int rc = sqlite3_bind_double(stmt_, index, *number);
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
  return *this;
}

double Statement::column_double(int column) const { return sqlite3_column_double(stmt_, column); }

Statement& Statement::bind_null(int index) {
  const int rc = sqlite3_bind_null(stmt_, index);
  if (rc != SQLITE_OK && bind_error_ == SQLITE_OK) bind_error_ = rc;
  return *this;
}

Status Statement::bind_status() const {
  if (bind_error_ == SQLITE_OK) return Status::ok();
  return Status::error(fmt::format("bind: {}", db_->describe(bind_error_)));
}

Result<bool> Statement::step() {
  if (Status bound = bind_status(); !bound) {
    reset();
    return bound;
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  std::string message = db_->describe(rc);
  reset();
  return Status::error(fmt::format("step \"{}\": {}", std::string(sqlite3_sql(stmt_)).substr(0, 60),
                                   message));
}

Status Statement::run() {
  Result<bool> stepped = step();
  while (stepped && stepped.value()) stepped = step();
  reset();
  return stepped.status();
}

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  bind_error_ = SQLITE_OK;
}

std::int64_t Statement::column_int(int column) const { return sqlite3_column_int64(stmt_, column); }

std::string Statement::column_text(int column) const {
  const auto* text = sqlite3_column_text(stmt_, column);
  const int size = sqlite3_column_bytes(stmt_, column);
  return text ? std::string(reinterpret_cast<const char*>(text), static_cast<std::size_t>(size))
              : std::string();
}

bool Statement::column_is_real(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_FLOAT;
}

bool Statement::column_is_null(int column) const {
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

}  // namespace smtpscope::sqlite
