#include "pg_schema.h"

#include <fmt/format.h>

#include <array>
#include <cctype>

#include "clock.h"

namespace smtpscope::pg {
namespace {

// Where a dollar quote's tag at script[i] ends ($tag$ or $$): the index past
// its closing '$', or 0 when script[i] starts none ($1 is a parameter).
std::size_t dollar_tag_end(std::string_view script, std::size_t i) {
  std::size_t j = i + 1;
  if (j < script.size() && std::isdigit(static_cast<unsigned char>(script[j]))) return 0;
  while (j < script.size() &&
         (std::isalnum(static_cast<unsigned char>(script[j])) || script[j] == '_')) {
    ++j;
  }
  return j < script.size() && script[j] == '$' ? j + 1 : 0;
}

// Index past the quoted text, comment or dollar-quoted body starting at i,
// or i when none starts there; npos when it never ends.
std::size_t skip_quoted(std::string_view script, std::size_t i) {
  const char c = script[i];
  if (c == '\'' || c == '"') {
    std::size_t j = i + 1;
    while (j < script.size()) {
      if (script[j] != c) {
        ++j;
      } else if (j + 1 < script.size() && script[j + 1] == c) {
        j += 2;  // a doubled quote stays inside
      } else {
        return j + 1;
      }
    }
    return std::string_view::npos;
  }
  if (script.substr(i, 2) == "--") {
    const std::size_t end = script.find('\n', i);
    return end == std::string_view::npos ? script.size() : end + 1;
  }
  if (script.substr(i, 2) == "/*") {
    const std::size_t end = script.find("*/", i + 2);
    return end == std::string_view::npos ? std::string_view::npos : end + 2;
  }
  if (c == '$') {
    const std::size_t tag_end = dollar_tag_end(script, i);
    if (tag_end == 0) return i;
    const std::string_view tag = script.substr(i, tag_end - i);
    const std::size_t close = script.find(tag, tag_end);
    return close == std::string_view::npos ? std::string_view::npos : close + tag.size();
  }
  return i;
}

bool is_comment_start(std::string_view script, std::size_t i) {
  return script.substr(i, 2) == "--" || script.substr(i, 2) == "/*";
}

std::string trimmed(std::string_view text) {
  std::size_t begin = 0;
  std::size_t end = text.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(text[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(text[end - 1]))) --end;
  return std::string(text.substr(begin, end - begin));
}

Result<std::int64_t> read_version(Connection& db) {
  auto exists = db.exec("SELECT to_regclass('schema_version') IS NOT NULL");
  if (!exists) return exists.status();
  if (exists.value().text(0, 0) != "t") return std::int64_t{0};
  auto rows =
      db.exec("SELECT coalesce(max(version), 0), coalesce(min(version), 0) FROM schema_version");
  if (!rows) return rows.status();
  const std::int64_t highest = std::stoll(std::string(rows.value().text(0, 0)));
  const std::int64_t lowest = std::stoll(std::string(rows.value().text(0, 1)));
  if (lowest < 0) {
    return Status::error(fmt::format(
        "database {} has schema version {}, which no smtpscope writes; use another database",
        db.url(), lowest));
  }
  return highest;
}

Status apply(Connection& db, const Migration& migration) {
  for (const std::string& statement : split_statements(migration.sql)) {
    if (auto done = db.exec(statement); !done) return done.status();
  }
  const std::array<Param, 3> record = {Param::text(std::to_string(migration.version)),
                                       Param::text(migration.name),
                                       Param::text(std::to_string(SystemClock().now_us()))};
  auto recorded =
      db.exec("INSERT INTO schema_version (version, name, applied_us) VALUES ($1, $2, $3)", record);
  return recorded ? Status::ok() : recorded.status();
}

// Inside the transaction: the lock, the table, the version check, the
// missing migrations.
Status migrate_locked(Connection& db, const std::vector<Migration>& migrations) {
  // Every smtpscope connecting takes the same lock: the first applies, the
  // others wait and then find nothing to do.
  if (auto locked = db.exec("SELECT pg_advisory_xact_lock(hashtext('smtpscope schema_version'))");
      !locked) {
    return locked.status();
  }
  if (auto created =
          db.exec("CREATE TABLE IF NOT EXISTS schema_version ("
                  " version bigint PRIMARY KEY, name text NOT NULL, applied_us bigint NOT NULL)");
      !created) {
    return created.status().context("create schema_version");
  }
  auto current = read_version(db);
  if (!current) return current.status();
  const int known = latest_version(migrations);
  if (current.value() > known) {
    return Status::error(
        fmt::format("database {} has schema version {}, newer than this smtpscope knows ({}); "
                    "upgrade smtpscope or use another database",
                    db.url(), current.value(), known));
  }
  for (const auto& migration : migrations) {
    if (migration.version <= current.value()) continue;
    if (Status applied = apply(db, migration); !applied) {
      return applied.context(fmt::format("migration {}", migration.name));
    }
  }
  return Status::ok();
}

}  // namespace

int latest_version(const std::vector<Migration>& migrations) {
  return migrations.empty() ? 0 : migrations.back().version;
}

Result<std::int64_t> schema_version(Connection& db) { return read_version(db); }

Status migrate(Connection& db, const std::vector<Migration>& migrations) {
  if (auto begun = db.exec("BEGIN"); !begun) return begun.status();
  Status done = migrate_locked(db, migrations);
  if (!done) {
    (void)db.exec("ROLLBACK");
    return done;
  }
  auto committed = db.exec("COMMIT");
  return committed ? Status::ok() : committed.status();
}

std::vector<std::string> split_statements(std::string_view script) {
  std::vector<std::string> statements;
  std::string current;
  bool has_code = false;  // more than blanks and comments
  std::size_t i = 0;
  while (i < script.size()) {
    const std::size_t end = skip_quoted(script, i);
    if (end == std::string_view::npos) {  // unterminated: the rest is one piece
      current.append(script.substr(i));
      has_code = true;
      break;
    }
    if (end != i) {
      has_code = has_code || !is_comment_start(script, i);
      current.append(script.substr(i, end - i));
      i = end;
      continue;
    }
    if (script[i] == ';') {
      if (has_code) statements.push_back(trimmed(current));
      current.clear();
      has_code = false;
    } else {
      has_code = has_code || !std::isspace(static_cast<unsigned char>(script[i]));
      current.push_back(script[i]);
    }
    ++i;
  }
  if (has_code) statements.push_back(trimmed(current));
  return statements;
}

}  // namespace smtpscope::pg
