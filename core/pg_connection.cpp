#include "pg_connection.h"

#include <fmt/format.h>
#include <libpq-fe.h>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "text_escape.h"

namespace smtpscope::pg {
namespace {

constexpr std::string_view kDefaultConnectTimeout = "10";

// libpq's messages span lines ("...failed: Connection refused\n\tIs the
// server running..."): one line for a log, printable.
std::string one_line(const char* message) {
  std::string text = message == nullptr ? "" : message;
  std::string out;
  bool gap = false;
  for (char c : text) {
    if (c == '\n' || c == '\t' || c == '\r') {
      gap = true;
      continue;
    }
    if (gap && !out.empty()) out += c == ' ' ? ";" : "; ";
    gap = false;
    out += c;
  }
  return printable(out, 1024);
}

bool has_option(const Url& url, std::string_view key) {
  for (const auto& [name, value] : url.options) {
    if (name == key) return true;
  }
  return false;
}

}  // namespace

Rows::Rows(Rows&& other) noexcept : result_(std::exchange(other.result_, nullptr)) {}

Rows& Rows::operator=(Rows&& other) noexcept {
  if (this != &other) {
    PQclear(result_);
    result_ = std::exchange(other.result_, nullptr);
  }
  return *this;
}

Rows::~Rows() { PQclear(result_); }

int Rows::size() const { return PQntuples(result_); }
int Rows::columns() const { return PQnfields(result_); }
bool Rows::is_null(int row, int column) const { return PQgetisnull(result_, row, column) != 0; }

std::string_view Rows::text(int row, int column) const {
  return {PQgetvalue(result_, row, column),
          static_cast<std::size_t>(PQgetlength(result_, row, column))};
}

long long Rows::affected() const {
  const char* count = PQcmdTuples(result_);
  return count == nullptr || *count == '\0' ? 0 : std::atoll(count);
}

Result<std::unique_ptr<Connection>> Connection::open(const Url& url,
                                                     const std::optional<std::string>& password) {
  std::vector<std::pair<std::string, std::string>> settings;
  if (!url.host.empty()) settings.emplace_back("host", url.host);
  if (url.port) settings.emplace_back("port", std::to_string(*url.port));
  if (!url.database.empty()) settings.emplace_back("dbname", url.database);
  if (!url.user.empty()) settings.emplace_back("user", url.user);
  if (password) settings.emplace_back("password", *password);
  settings.insert(settings.end(), url.options.begin(), url.options.end());
  if (!has_option(url, "connect_timeout")) {
    settings.emplace_back("connect_timeout", kDefaultConnectTimeout);
  }
  if (!has_option(url, "application_name")) settings.emplace_back("application_name", "smtpscope");
  settings.emplace_back("client_encoding", "UTF8");

  std::vector<const char*> keys;
  std::vector<const char*> values;
  for (const auto& [key, value] : settings) {
    keys.push_back(key.c_str());
    values.push_back(value.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);

  std::string shown = display(url);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), 0);
  if (conn == nullptr) return Status::error(fmt::format("connect to {}: out of memory", shown));
  if (PQstatus(conn) != CONNECTION_OK) {
    std::string message = one_line(PQerrorMessage(conn));
    PQfinish(conn);
    return Status::error(fmt::format("connect to {}: {}", shown, message));
  }
  PQsetNoticeProcessor(
      conn, [](void*, const char*) {}, nullptr);
  return std::unique_ptr<Connection>(new Connection(conn, std::move(shown)));
}

Connection::~Connection() { PQfinish(conn_); }

Status Connection::failure(std::string_view what, PGresult* result) const {
  std::string message =
      one_line(result != nullptr ? PQresultErrorMessage(result) : PQerrorMessage(conn_));
  const char* state = result != nullptr ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  if (state != nullptr) message += fmt::format(" (SQLSTATE {})", state);
  return Status::error(fmt::format("{}: {}: {}", url_, what, message));
}

Result<Rows> Connection::exec(std::string_view sql, std::span<const Param> params) {
  std::vector<const char*> values;
  std::vector<int> lengths;
  std::vector<int> formats;
  for (std::size_t i = 0; i < params.size(); ++i) {
    const auto& value = params[i].value();
    if (value && !params[i].binary() && value->find('\0') != std::string::npos) {
      return Status::error(
          fmt::format("{}: parameter ${} is text with a NUL byte, which "
                      "PostgreSQL text cannot hold (bind it as bytes)",
                      url_, i + 1));
    }
    values.push_back(value ? value->c_str() : nullptr);
    lengths.push_back(value ? static_cast<int>(value->size()) : 0);
    formats.push_back(params[i].binary() ? 1 : 0);
  }
  std::string statement(sql);
  PGresult* result = PQexecParams(conn_, statement.c_str(), static_cast<int>(params.size()),
                                  nullptr, values.data(), lengths.data(), formats.data(), 0);
  ExecStatusType status = result != nullptr ? PQresultStatus(result) : PGRES_FATAL_ERROR;
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    Status error = failure("query failed", result);
    PQclear(result);
    return error;
  }
  return Rows(result);
}

Result<long long> Connection::copy_in(std::string_view copy_sql, std::string_view data) {
  std::string statement(copy_sql);
  PGresult* started = PQexec(conn_, statement.c_str());
  if (started == nullptr || PQresultStatus(started) != PGRES_COPY_IN) {
    Status error = failure("COPY did not start", started);
    PQclear(started);
    return error;
  }
  PQclear(started);
  // Pieces below libpq's int length; PQputCopyData blocks until sent.
  constexpr std::size_t kPiece = 1 << 20;
  const char* abort_reason = nullptr;
  for (std::size_t at = 0; at < data.size(); at += kPiece) {
    std::string_view piece = data.substr(at, kPiece);
    if (PQputCopyData(conn_, piece.data(), static_cast<int>(piece.size())) != 1) {
      abort_reason = "sending failed";
      break;
    }
  }
  if (PQputCopyEnd(conn_, abort_reason) != 1) return failure("COPY end failed", nullptr);
  PGresult* result = PQgetResult(conn_);
  Status error = Status::ok();
  long long copied = 0;
  if (result == nullptr || PQresultStatus(result) != PGRES_COMMAND_OK) {
    error = failure("COPY failed", result);
  } else {
    copied = Rows(result).affected();
    result = nullptr;  // Rows owned and cleared it
  }
  PQclear(result);
  // Drain to the end of the command so the connection is ready again.
  while (PGresult* rest = PQgetResult(conn_)) PQclear(rest);
  if (!error) return error;
  return copied;
}

}  // namespace smtpscope::pg
