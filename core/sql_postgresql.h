// sql::Connection over a PostgreSQL database (the fleet store): the store's
// SQL, written with SQLite's placeholders, sent with $N and typed
// parameters (sql_placeholders.h); SELECTs streamed through a cursor, 1,000
// rows per FETCH (sql_connection.h says when the transaction ends). A
// SELECT run while another one streams is read whole in one round trip:
// the nested reads are per-row lookups (a session's transactions and
// events), and a cursor would take three round trips each (measured: 4.8 s
// instead of ~1.5 s for 3,000 sessions' timelines).
// BEGIN... sent through exec() starts a transaction (SQLite's BEGIN
// IMMEDIATE, DEFERRED or EXCLUSIVE is sent as BEGIN), COMMIT, END or
// ROLLBACK ends it.
#pragma once

#include <memory>

#include "pg_connection.h"
#include "sql_connection.h"

namespace smtpscope::sql {

// Rows per FETCH of a streamed SELECT.
inline constexpr int kFetchRows = 1000;

std::unique_ptr<Connection> over_postgresql(std::unique_ptr<pg::Connection> connection);

}  // namespace smtpscope::sql
