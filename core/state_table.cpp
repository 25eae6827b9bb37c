#include "state_table.h"

#include <fmt/format.h>

namespace smtpscope {
namespace {

const char* name_of(StateTable table) {
  return table == StateTable::analysis ? "analysis_state" : "forward_state";
}

}  // namespace

Result<std::optional<std::string>> read_state(sqlite::Database& db, StateTable table,
                                              const std::string& key) {
  auto q = db.prepare(fmt::format("SELECT value FROM {} WHERE key = ?1", name_of(table)));
  if (!q) return q.status();
  q.value().bind(1, key);
  auto row = q.value().step();
  if (!row) return row.status();
  if (!row.value()) return std::optional<std::string>();
  return std::optional<std::string>(q.value().column_text(0));
}

Status write_state(sqlite::Database& db, StateTable table, const std::string& key,
                   const std::string& value) {
  auto q = db.prepare(fmt::format(
      "INSERT INTO {} (key, value) VALUES (?1, ?2)"
      " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
      name_of(table)));
  if (!q) return q.status();
  return q.value().bind(1, key).bind(2, value).run();
}

Status clear_state(sqlite::Database& db, StateTable table, const std::string& key) {
  auto q = db.prepare(fmt::format("DELETE FROM {} WHERE key = ?1", name_of(table)));
  if (!q) return q.status();
  return q.value().bind(1, key).run();
}

}  // namespace smtpscope
