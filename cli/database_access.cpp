#include "database_access.h"

#include <fmt/format.h>

#include <filesystem>

#include "config.h"
#include "migrations.h"

namespace smtpscope::cli {

Result<std::string> database_path(const DatabaseChoice& choice) {
  if (!choice.db_path.empty()) return choice.db_path;
  auto config = std::filesystem::exists(choice.config_path) ? load_config(choice.config_path)
                                                            : Result<Config>(default_config());
  if (!config) return config.status();
  return config.value().database.path;
}

Result<std::unique_ptr<sqlite::Database>> open_for_reading(const DatabaseChoice& choice) {
  auto chosen = database_path(choice);
  if (!chosen) return chosen.status();
  const std::string& path = chosen.value();
  if (!std::filesystem::exists(path)) {
    return Status::error(fmt::format(
        "no database at {} (start smtpscope-milter first, or name one with --db)", path));
  }
  auto db = sqlite::Database::open(path, false, 5000);
  if (!db) return db.status();
  auto version = schema_version(*db.value());
  if (!version) return version.status().context(fmt::format("{} is not an smtpscope database", path));
  if (version.value() > latest_schema_version()) {
    return Status::error(fmt::format("database {} has schema version {}, newer than this "
                                     "smtpscope knows ({}); upgrade smtpscope",
                                     path, version.value(), latest_schema_version()));
  }
  if (version.value() < latest_schema_version()) {
    if (Status migrated = migrate(*db.value(), embedded_migrations()); !migrated) {
      return migrated.context("upgrade the schema of " + path);
    }
  }
  return std::move(db).value();
}

}  // namespace smtpscope::cli
