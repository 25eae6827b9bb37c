// Test doubles shared by the unit tests: a settable clock, a sink that keeps
// events in a vector, a temporary directory removed at scope exit, an
// in-memory database at the current schema, a one-number query, the rows
// of queries as text, and a milter connect event.
#pragma once

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "clock.h"
#include "event.h"
#include "event_sink.h"
#include "migrations.h"
#include "sqlite.h"

namespace smtpscope::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::int64_t start_us = 1'700'000'000'000'000) : now_(start_us) {}
  std::int64_t now_us() const override { return now_.load(); }
  void advance_us(std::int64_t delta) { now_ += delta; }

 private:
  std::atomic<std::int64_t> now_;
};

class VectorSink final : public EventSink {
 public:
  bool submit(Event event) override {
    std::lock_guard lock(mutex_);
    if (refuse) return false;
    events.push_back(std::move(event));
    return true;
  }
  std::vector<std::string> stages() const {
    std::vector<std::string> names;
    for (const auto& e : events) names.emplace_back(to_string(e.stage));
    return names;
  }
  std::vector<Event> events;
  bool refuse = false;

 private:
  std::mutex mutex_;
};

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "smtpscope-unit-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// An in-memory database with every migration applied; nullptr (and a
// failed assertion in the caller's check) if that fails.
inline std::unique_ptr<sqlite::Database> migrated_memory_database() {
  auto db = sqlite::Database::open(":memory:", true, 1000);
  if (!db || !migrate(*db.value(), embedded_migrations())) return nullptr;
  return std::move(db).value();
}

// The first column of the first row of `sql` on the database file at
// `path`, as a number; -1 if the database or the query fails (so the
// caller's EXPECT_EQ fails).
inline std::int64_t query_number(const std::string& path, const std::string& sql) {
  auto db = sqlite::Database::open(path, false, 5000);
  if (!db) return -1;
  auto q = db.value()->prepare(sql);
  if (!q) return -1;
  auto row = q.value().step();
  if (!row || !row.value()) return -1;
  return q.value().column_int(0);
}

// The rows of each (query, columns) as "v|v|...|" lines (NULL for NULL),
// one query after the other: a database's content compared as a whole.
inline std::string rows_as_text(
    sqlite::Database& db, const std::vector<std::pair<std::string, int>>& queries) {
  std::string out;
  for (const auto& [sql, columns] : queries) {
    auto q = db.prepare(sql);
    if (!q) return out + "error: " + q.message();
    for (;;) {
      auto row = q.value().step();
      if (!row) return out + "error: " + row.message();
      if (!row.value()) break;
      for (int c = 0; c < columns; ++c) {
        out += (q.value().column_is_null(c) ? "NULL" : q.value().column_text(c)) + "|";
      }
      out += "\n";
    }
  }
  return out;
}

// The milter's connect of stream test:N from 192.0.2.(N % 250).
inline Event connect_event(int n) {
  Event e;
  e.stage = Stage::connect;
  e.time_us = 1000 + n;
  e.stream = "test:" + std::to_string(n);
  e.add("client_addr", "192.0.2." + std::to_string(n % 250));
  return e;
}

}  // namespace smtpscope::testing
