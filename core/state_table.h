// Key-value tables of the local SQLite file where a part keeps its notes:
// analysis_state (what the stored analysis was made with and how far it
// looked) and forward_state (the forwarder's instance, origin and
// watermarks). One row per key, text values; nothing else touches them.
#pragma once

#include <optional>
#include <string>

#include "result.h"
#include "sqlite.h"

namespace smtpscope {

enum class StateTable { analysis, forward };

// The key's value, or nullopt without one.
Result<std::optional<std::string>> read_state(sqlite::Database& db, StateTable table,
                                              const std::string& key);
// Sets (inserts or replaces) the key's value.
Status write_state(sqlite::Database& db, StateTable table, const std::string& key,
                   const std::string& value);
// Removes the key; nothing to remove is no error.
Status clear_state(sqlite::Database& db, StateTable table, const std::string& key);

}  // namespace smtpscope
