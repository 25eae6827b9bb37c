#include "store.h"

#include <gtest/gtest.h>

#include <thread>

#include "test_support.h"

namespace smtpscope {
namespace {

using testing::FakeClock;
using testing::TempDir;

Event connect_event(int n) {
  Event e;
  e.stage = Stage::connect;
  e.time_us = 1000 + n;
  e.stream = "test:" + std::to_string(n);
  e.add("client_addr", "192.0.2." + std::to_string(n % 250));
  return e;
}

std::int64_t count(const std::string& path, const std::string& sql) {
  auto db = sqlite::Database::open(path, false, 5000);
  EXPECT_TRUE(db) << db.message();
  auto q = db.value()->prepare(sql);
  EXPECT_TRUE(q) << q.message();
  EXPECT_TRUE(q.value().step().value());
  return q.value().column_int(0);
}

StoreOptions options_for(const std::string& path) {
  StoreOptions options;
  options.path = path;
  options.batch_size = 64;
  options.batch_interval = std::chrono::milliseconds(10);
  options.retry_interval = std::chrono::milliseconds(20);
  return options;
}

TEST(Store, StopCommitsEveryQueuedEventInBatches) {
  TempDir dir;
  FakeClock clock;
  auto store = Store::open(options_for(dir.file("s.db")), clock);
  ASSERT_TRUE(store) << store.message();
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(store.value()->enqueue(connect_event(i)));
  store.value()->stop();
  const StoreStats stats = store.value()->stats();
  EXPECT_EQ(stats.written, 1000u);
  EXPECT_EQ(stats.dropped, 0u);
  EXPECT_GE(stats.batches, 1000u / 64);
  EXPECT_EQ(count(dir.file("s.db"), "SELECT count(*) FROM sessions"), 1000);
  EXPECT_EQ(count(dir.file("s.db"), "SELECT count(*) FROM events"), 1000);
}

TEST(Store, UsesWalSoReadersAndWritersShareTheFile) {
  TempDir dir;
  FakeClock clock;
  auto store = Store::open(options_for(dir.file("s.db")), clock);
  ASSERT_TRUE(store);
  auto db = sqlite::Database::open(dir.file("s.db"), false, 1000);
  auto mode = db.value()->prepare("PRAGMA journal_mode");
  ASSERT_TRUE(mode.value().step().value());
  EXPECT_EQ(mode.value().column_text(0), "wal");
}

TEST(Store, AFullQueueDropsCountsAndRecordsTheDrops) {
  TempDir dir;
  FakeClock clock;
  StoreOptions options = options_for(dir.file("s.db"));
  options.queue_capacity = 16;
  options.batch_size = 1'000'000;  // never wakes early: only the interval or stop
  options.batch_interval = std::chrono::hours(1);
  auto store = Store::open(options, clock);
  ASSERT_TRUE(store);
  int accepted = 0;
  for (int i = 0; i < 20; ++i) accepted += store.value()->enqueue(connect_event(i)) ? 1 : 0;
  EXPECT_EQ(accepted, 16);  // capacity-1, capacity accepted; capacity+1.. dropped
  store.value()->stop();
  EXPECT_EQ(store.value()->stats().dropped, 4u);
  EXPECT_EQ(count(dir.file("s.db"), "SELECT count(*) FROM sessions"), 16);
  EXPECT_EQ(count(dir.file("s.db"), "SELECT sum(dropped) FROM drops WHERE source = 'milter'"), 4);
}

TEST(Store, ALockedDatabaseDelaysButLosesNothing) {
  TempDir dir;
  FakeClock clock;
  StoreOptions options = options_for(dir.file("s.db"));
  options.busy_timeout_ms = 20;
  auto store = Store::open(options, clock);
  ASSERT_TRUE(store);

  auto blocker = sqlite::Database::open(dir.file("s.db"), false, 0);
  ASSERT_TRUE(blocker);
  ASSERT_TRUE(blocker.value()->exec("BEGIN IMMEDIATE"));  // holds the write lock
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(store.value()->enqueue(connect_event(i)));
  // Wait until the writer has tried and failed at least once.
  for (int i = 0; i < 500 && store.value()->stats().failed_batches == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_GT(store.value()->stats().failed_batches, 0u);
  EXPECT_EQ(store.value()->stats().written, 0u);
  ASSERT_TRUE(blocker.value()->exec("COMMIT"));

  store.value()->stop();
  EXPECT_EQ(store.value()->stats().written, 100u);
  EXPECT_EQ(count(dir.file("s.db"), "SELECT count(*) FROM sessions"), 100);
  EXPECT_EQ(count(dir.file("s.db"), "SELECT count(*) FROM events"), 100);
}

TEST(Store, EnqueueAfterStopIsADrop) {
  TempDir dir;
  FakeClock clock;
  auto store = Store::open(options_for(dir.file("s.db")), clock);
  ASSERT_TRUE(store);
  store.value()->stop();
  EXPECT_FALSE(store.value()->enqueue(connect_event(1)));
  EXPECT_EQ(store.value()->stats().dropped, 1u);
}

TEST(Store, AnUnopenablePathIsAClearError) {
  FakeClock clock;
  auto store = Store::open(options_for("/nonexistent-dir/s.db"), clock);
  ASSERT_FALSE(store);
  EXPECT_NE(store.message().find("open database /nonexistent-dir/s.db"), std::string::npos)
      << store.message();
}

}  // namespace
}  // namespace smtpscope
