// Reads recorded sessions back from the database, oldest first, with their
// events in order (a log line stamped in whole seconds is ordered by the end
// of its second, when it had certainly happened), for views and reports.
// Read-only, in one read transaction, so it can run while the daemons write
// (WAL), or while other hosts write to a PostgreSQL store (sql_connection.h).
// for_each_session holds one session at a time (a view of a million
// sessions streams them); read_sessions gathers them all.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "result.h"
#include "sql_connection.h"
#include "sqlite.h"

namespace smtpscope {

struct EventRecord {
  std::string source;
  std::string stage;
  std::int64_t time_us = 0;
  std::optional<std::int64_t> transaction_seq;
  std::string argument;
  std::string attributes_json;
};

struct TransactionRecord {
  std::int64_t seq = 0;
  std::string mail_from;
  std::int64_t rcpt_accepted = 0;
  std::int64_t rcpt_rejected = 0;
  bool reached_data = false;
  std::string queue_id;
  std::optional<std::int64_t> body_bytes;
  std::string outcome;
};

struct SessionRecord {
  std::int64_t id = 0;
  std::string client_addr;
  std::optional<std::int64_t> client_port;
  std::string client_name;
  std::string server_addr;
  std::optional<std::int64_t> server_port;
  std::int64_t connect_us = 0;
  std::optional<std::int64_t> close_us;
  std::string helo;
  std::string protocol;  // SMTP or ESMTP when the policy server saw the greeting
  std::string host;      // the mail server, from its log's host field; empty if unknown
  bool partial = false;
  std::vector<TransactionRecord> transactions;
  std::vector<EventRecord> events;
};

struct SessionFilter {
  std::optional<std::string> client_addr;
  std::optional<std::int64_t> since_us;
  std::optional<std::int64_t> closed_since_us;  // sessions that ended at or after this
  std::optional<std::string> host;              // sessions on this mail server only
  std::optional<std::vector<std::int64_t>> ids;  // these sessions only
  std::size_t limit = 50;  // the most recent `limit` sessions
};

// Called with each session in turn, complete with its transactions and
// events; an error it returns ends the read and is returned.
using SessionVisitor = std::function<Status(SessionRecord)>;

Status for_each_session(sql::Connection& db, const SessionFilter& filter,
                        const SessionVisitor& visit);
Result<std::vector<SessionRecord>> read_sessions(sql::Connection& db, const SessionFilter& filter);
// The same on an SQLite database.
Status for_each_session(sqlite::Database& db, const SessionFilter& filter,
                        const SessionVisitor& visit);
Result<std::vector<SessionRecord>> read_sessions(sqlite::Database& db, const SessionFilter& filter);

}  // namespace smtpscope
