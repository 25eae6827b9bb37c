// Test doubles shared by the unit tests: a settable clock, a sink that keeps
// events in a vector, a temporary directory removed at scope exit, an
// in-memory database at the current schema, and a one-number query.
#pragma once

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "clock.h"
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

}  // namespace smtpscope::testing
