#include "database_access.h"

#include <fmt/format.h>

#include <filesystem>

#include "config.h"
#include "migrations.h"

namespace smtpscope::cli {

Result<std::unique_ptr<sqlite::Database>> open_for_reading(const DatabaseChoice& choice) {
  std::string path = choice.db_path;
  if (path.empty()) {
    auto config = std::filesystem::exists(choice.config_path) ? load_config(choice.config_path)
                                                              : Result<Config>(default_config());
    if (!config) return config.status();
    path = config.value().database.path;
  }
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
  return std::move(db).value();
}

}  // namespace smtpscope::cli
