// Streams the rows of an SQLite query into PostgreSQL with COPY FROM STDIN,
// chunk by chunk: what `db copy` and the forwarder send. Promises: memory
// bounded by one chunk; every row sent once, in the query's order; values
// in COPY's text format (pg_copy_text.h), numbers with every digit; an
// error names what failed (reading the query or sending a chunk).
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

#include "pg_connection.h"
#include "result.h"
#include "sqlite.h"

namespace smtpscope::pg {

struct CopyStream {
  std::string_view copy_sql;     // COPY table (columns) FROM STDIN
  int width = 0;                 // the query's columns, in the COPY's order
  std::int64_t rows_per_chunk = 20000;
  std::int64_t* replaced = nullptr;  // counts values PostgreSQL text cannot hold
  // After each chunk sent: the rows sent so far.
  std::function<void(std::int64_t)> on_chunk;
};

// Steps `query` to its end; the rows sent.
Result<std::int64_t> copy_query_rows(sqlite::Statement& query, Connection& to,
                                     const CopyStream& stream);

}  // namespace smtpscope::pg
