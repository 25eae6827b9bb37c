#include "pg_copy_rows.h"

#include <string>

#include "pg_copy_text.h"

namespace smtpscope::pg {

Result<std::int64_t> copy_query_rows(sqlite::Statement& query, Connection& to,
                                     const CopyStream& stream) {
  std::string chunk;
  std::int64_t in_chunk = 0;
  std::int64_t sent = 0;
  auto flush = [&]() -> Status {
    if (in_chunk == 0) return Status::ok();
    auto copied = to.copy_in(stream.copy_sql, chunk);
    if (!copied) return copied.status().context("send a chunk");
    sent += in_chunk;
    chunk.clear();
    in_chunk = 0;
    if (stream.on_chunk) stream.on_chunk(sent);
    return Status::ok();
  };
  while (true) {
    auto row = query.step();
    if (!row) return row.status().context("read the rows");
    if (!row.value()) break;
    for (int column = 0; column < stream.width; ++column) {
      if (column > 0) chunk.push_back('\t');
      if (append_copy_column(chunk, query, column) && stream.replaced != nullptr) {
        ++*stream.replaced;
      }
    }
    chunk.push_back('\n');
    if (++in_chunk == stream.rows_per_chunk) {
      if (Status done = flush(); !done) return done;
    }
  }
  if (Status done = flush(); !done) return done;
  return sent;
}

}  // namespace smtpscope::pg
