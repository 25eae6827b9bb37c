// A small RAII wrapper over one libpq connection: connect with a parsed Url
// and its password (pg_url.h), run statements with bound parameters
// (PQexecParams; values never spliced into SQL), bulk-load with COPY FROM
// STDIN. Every failure is a Status naming the URL without its password and
// the server's message (with its SQLSTATE where there is one).
// Not thread-safe: a Connection and its Rows belong to one thread at a time.
// libpq's notices (e.g. "relation exists, skipping") are discarded.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "pg_url.h"
#include "result.h"

struct pg_conn;
struct pg_result;

namespace smtpscope::pg {

// One bound parameter. text(): sent in text format, so PostgreSQL parses it
// as the column's type (numbers too); a NUL byte, which PostgreSQL text
// cannot hold, makes exec() fail instead of cutting the value. bytes(): sent
// in binary format for a bytea, any bytes. null(): SQL NULL.
class Param {
 public:
  static Param text(std::string_view value) { return Param(std::string(value), false); }
  static Param bytes(std::string_view value) { return Param(std::string(value), true); }
  static Param null() { return Param(std::nullopt, false); }

  const std::optional<std::string>& value() const { return value_; }
  bool binary() const { return binary_; }

 private:
  Param(std::optional<std::string> value, bool binary)
      : value_(std::move(value)), binary_(binary) {}
  std::optional<std::string> value_;
  bool binary_;
};

// The rows a statement returned (none for INSERT/UPDATE without RETURNING),
// all columns in text format.
class Rows {
 public:
  Rows(Rows&& other) noexcept;
  Rows& operator=(Rows&& other) noexcept;
  ~Rows();

  int size() const;
  int columns() const;
  bool is_null(int row, int column) const;
  // The value's text; empty for NULL.
  std::string_view text(int row, int column) const;
  // Rows changed by INSERT/UPDATE/DELETE/COPY (PQcmdTuples), 0 otherwise.
  long long affected() const;

 private:
  friend class Connection;
  explicit Rows(pg_result* result) : result_(result) {}
  pg_result* result_;
};

class Connection {
 public:
  // Connects; connect_timeout from the URL, else 10 s. No password: libpq's
  // own sources (~/.pgpass) or none needed.
  static Result<std::unique_ptr<Connection>> open(const Url& url,
                                                  const std::optional<std::string>& password);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // One statement with $1, $2... bound to params.
  Result<Rows> exec(std::string_view sql, std::span<const Param> params = {});
  // COPY ... FROM STDIN with data in COPY's text format, sent in one piece.
  Result<long long> copy_in(std::string_view copy_sql, std::string_view data);

  // The URL for messages (display(): no password).
  const std::string& url() const { return url_; }

 private:
  Connection(pg_conn* conn, std::string url) : conn_(conn), url_(std::move(url)) {}
  Status failure(std::string_view what, pg_result* result) const;
  pg_conn* conn_;
  std::string url_;
};

}  // namespace smtpscope::pg
