#include "forward_spool.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "store.h"
#include "test_support.h"

namespace smtpscope {
namespace {

using testing::connect_event;
using testing::FakeClock;
using testing::query_number;
using testing::TempDir;

// The file forwards from event `base` on (as Forwarder::attach notes it),
// and the fleet store has the events up to `done`.
void forwards(const std::string& path, std::int64_t base, std::int64_t done) {
  auto db = open_database(path, 1000);
  ASSERT_TRUE(db) << db.message();
  ASSERT_TRUE(db.value()->exec(fmt::format(
      "INSERT INTO forward_state VALUES ('origin', '1'), ('spool_base', '{}'),"
      " ('event_rows_done', '{}')", base, done)));
}

StoreOptions spool_options(const std::string& path, std::size_t max_events) {
  StoreOptions options;
  options.path = path;
  options.batch_size = 10;
  options.batch_interval = std::chrono::milliseconds(10);
  options.spool_max_events = max_events;
  return options;
}

TEST(ForwardSpool, CountsWhatWasRecordedSinceForwardingBeganAndIsNotForwarded) {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.file("s.db");
  auto store = Store::open(spool_options(path, 0), clock);
  ASSERT_TRUE(store);
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(store.value()->enqueue(connect_event(i)));
  store.value()->stop();
  auto db = open_database(path, 1000);
  ASSERT_TRUE(db);
  EXPECT_EQ(unforwarded_events(*db.value()).value(), 0);  // does not forward
  forwards(path, 20, 0);
  EXPECT_EQ(unforwarded_events(*db.value()).value(), 30);  // the history is not the spool
  ASSERT_TRUE(db.value()->exec("UPDATE forward_state SET value = '45' WHERE key ="
                               " 'event_rows_done'"));
  EXPECT_EQ(unforwarded_events(*db.value()).value(), 5);
}

// While the fleet store is away, the spool fills to its bound and the
// batches beyond are dropped, counted by cause and recorded in drops.
TEST(ForwardSpool, AFullSpoolDropsCountsAndRecordsTheDrops) {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.file("s.db");
  { auto created = open_database(path, 1000); ASSERT_TRUE(created); }
  forwards(path, 0, 0);
  auto store = Store::open(spool_options(path, 25), clock);
  ASSERT_TRUE(store) << store.message();
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(store.value()->enqueue(connect_event(i)));
  // Batches of 10 after each other: 10, 20 fit; 30 would not.
  for (int round = 1; round < 4; ++round) {
    while (store.value()->stats().written + store.value()->stats().dropped <
           static_cast<std::uint64_t>(round * 10)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (int i = 0; i < 10; ++i) {
      ASSERT_TRUE(store.value()->enqueue(connect_event(round * 10 + i)));
    }
  }
  store.value()->stop();
  const StoreStats stats = store.value()->stats();
  EXPECT_EQ(stats.written, 20u);
  EXPECT_EQ(stats.dropped, 20u);
  EXPECT_EQ(stats.dropped_for_spool, 20u);
  EXPECT_EQ(query_number(path, "SELECT count(*) FROM event_rows"), 20);
  EXPECT_EQ(query_number(path, "SELECT sum(dropped) FROM drops"), 20);
}

TEST(ForwardSpool, WithoutForwardingThereIsNoBound) {
  TempDir dir;
  FakeClock clock;
  const std::string path = dir.file("s.db");
  auto store = Store::open(spool_options(path, 0), clock);
  ASSERT_TRUE(store);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(store.value()->enqueue(connect_event(i)));
  store.value()->stop();
  EXPECT_EQ(store.value()->stats().dropped, 0u);
  EXPECT_EQ(query_number(path, "SELECT count(*) FROM event_rows"), 100);
}

}  // namespace
}  // namespace smtpscope
