#include "forward_spool.h"

namespace smtpscope {

Result<std::int64_t> unforwarded_events(sqlite::Database& local) {
  auto q = local.prepare(
      "SELECT (SELECT coalesce(max(id), 0) FROM event_rows) - coalesce((SELECT max(CAST(value"
      " AS INTEGER)) FROM forward_state WHERE key IN ('event_rows_done', 'spool_base')), 0),"
      " EXISTS (SELECT 1 FROM forward_state WHERE key = 'origin')");
  if (!q) return q.status();
  auto row = q.value().step();
  if (!row) return row.status();
  if (q.value().column_int(1) == 0) return std::int64_t{0};
  return q.value().column_int(0);
}

}  // namespace smtpscope
