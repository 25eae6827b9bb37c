#include "store.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>
#include <thread>

#include "migrations.h"
#include "test_support.h"

namespace smtpscope {
namespace {

using testing::connect_event;
using testing::FakeClock;
using testing::query_number;
using testing::TempDir;

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
  EXPECT_EQ(query_number(dir.file("s.db"), "SELECT count(*) FROM sessions"), 1000);
  EXPECT_EQ(query_number(dir.file("s.db"), "SELECT count(*) FROM events"), 1000);
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
  EXPECT_EQ(query_number(dir.file("s.db"), "SELECT count(*) FROM sessions"), 16);
  EXPECT_EQ(query_number(dir.file("s.db"), "SELECT sum(dropped) FROM drops WHERE source = 'milter'"), 4);
}

// ~payload bytes of argument, like a policy request's long attribute.
Event large_event(int n, std::size_t payload) {
  Event e = connect_event(n);
  e.argument = std::string(payload, 'x');
  return e;
}

// The bound counts the memory an event holds, not the length of its text.
TEST(Store, AnEventsBytesAreWhatItsStringsHold) {
  Event small = connect_event(1);
  const std::size_t base = memory_bytes(small);
  EXPECT_GE(base, sizeof(Event));
  Event large = connect_event(1);
  large.argument.reserve(1 << 20);  // empty, with 1 MiB behind it
  EXPECT_GE(memory_bytes(large), base + (1 << 20));
  large.add("ccert_subject", std::string(100'000, 's'));
  EXPECT_GE(memory_bytes(large), base + (1 << 20) + 100'000);
  const std::size_t before = memory_bytes(large);
  Event moved = std::move(large);
  EXPECT_EQ(memory_bytes(moved), before);
}

// What spdlog writes while it lives (the default logger, restored after).
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto logger = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(text_));
    logger->set_pattern("%v");
    spdlog::set_default_logger(std::move(logger));
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  std::string text() const { return text_.str(); }

 private:
  std::ostringstream text_;
  std::shared_ptr<spdlog::logger> previous_;
};

// The writer never takes a batch before stop(): everything stays queued.
StoreOptions held_until_stop(const std::string& path, std::size_t queue_bytes) {
  StoreOptions options = options_for(path);
  options.queue_bytes = queue_bytes;
  options.batch_size = 1'000'000;
  options.batch_interval = std::chrono::hours(1);
  return options;
}

// Two events of 10,000 bytes of text each offered to a queue of
// `queue_bytes`: how many it took. Every event offered is written or dropped.
int accepted_of_two(std::size_t queue_bytes) {
  TempDir dir;
  FakeClock clock;
  auto store = Store::open(held_until_stop(dir.file("s.db"), queue_bytes), clock);
  EXPECT_TRUE(store) << store.message();
  int accepted = 0;
  for (int i = 0; i < 2; ++i) accepted += store.value()->enqueue(large_event(i, 10'000)) ? 1 : 0;
  store.value()->stop();
  const StoreStats stats = store.value()->stats();
  EXPECT_EQ(stats.enqueued, static_cast<std::uint64_t>(accepted));
  EXPECT_EQ(stats.written, stats.enqueued);
  EXPECT_EQ(stats.written + stats.dropped, 2u);
  EXPECT_EQ(stats.dropped_for_bytes, stats.dropped);
  return accepted;
}

TEST(Store, TheByteBoundTakesAnEventUpToTheLimitAndDropsBeyond) {
  const std::size_t f = memory_bytes(large_event(0, 10'000));
  ASSERT_GT(f, 10'000u);
  ASSERT_EQ(memory_bytes(large_event(1, 10'000)), f);
  EXPECT_EQ(accepted_of_two(2 * f + 1), 2);  // the two hold limit-1
  EXPECT_EQ(accepted_of_two(2 * f), 2);      // exactly the limit
  EXPECT_EQ(accepted_of_two(2 * f - 1), 1);  // limit+1: the second is dropped
  EXPECT_EQ(accepted_of_two(f - 1), 0);      // one event larger than the whole bound
}

TEST(Store, ByteDropsAreCountedRecordedAndLoggedWithTheirCause) {
  TempDir dir;
  FakeClock clock;
  const std::size_t f = memory_bytes(large_event(0, 10'000));
  CapturedLog log;
  auto store = Store::open(held_until_stop(dir.file("s.db"), 5 * f), clock);
  ASSERT_TRUE(store);
  int accepted = 0;
  for (int i = 0; i < 20; ++i) accepted += store.value()->enqueue(large_event(i, 10'000)) ? 1 : 0;
  EXPECT_EQ(accepted, 5);
  store.value()->stop();
  const StoreStats stats = store.value()->stats();
  EXPECT_EQ(stats.dropped, 15u);
  EXPECT_EQ(stats.dropped_for_bytes, 15u);
  EXPECT_EQ(stats.enqueued, 5u);
  EXPECT_EQ(stats.written, stats.enqueued);
  EXPECT_EQ(stats.enqueued + stats.dropped, 20u);
  EXPECT_EQ(query_number(dir.file("s.db"), "SELECT count(*) FROM events"), 5);
  EXPECT_EQ(query_number(dir.file("s.db"), "SELECT sum(dropped) FROM drops WHERE source = 'milter'"), 15);
  // One line for the burst (rate-limited), naming the bound that was reached.
  const std::string text = log.text();
  EXPECT_NE(text.find(fmt::format("store event=dropped reason=queue-bytes queue_bytes={} "
                                  "event_bytes={} suppressed=0",
                                  5 * f, f)),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("reason=queue-full"), std::string::npos) << text;
  EXPECT_EQ(text.find("event=dropped", text.find("event=dropped") + 1), std::string::npos) << text;
}

TEST(Store, TheCountBoundStillSaysQueueFull) {
  TempDir dir;
  FakeClock clock;
  StoreOptions options = held_until_stop(dir.file("s.db"), 1 << 30);
  options.queue_capacity = 16;
  CapturedLog log;
  auto store = Store::open(options, clock);
  ASSERT_TRUE(store);
  for (int i = 0; i < 17; ++i) (void)store.value()->enqueue(connect_event(i));
  store.value()->stop();
  EXPECT_EQ(store.value()->stats().dropped, 1u);
  EXPECT_EQ(store.value()->stats().dropped_for_bytes, 0u);
  EXPECT_NE(log.text().find("store event=dropped reason=queue-full capacity=16"), std::string::npos)
      << log.text();
}

// The batch the writer keeps retrying is still in memory: it counts against
// the bound until it is committed, then its bytes are free for new events.
TEST(Store, ABatchTheWriterRetriesStillCountsAgainstTheByteBound) {
  TempDir dir;
  FakeClock clock;
  const std::size_t f = memory_bytes(large_event(0, 10'000));
  StoreOptions options = options_for(dir.file("s.db"));
  options.busy_timeout_ms = 20;
  options.queue_bytes = 4 * f;
  options.batch_size = 2;
  auto store = Store::open(options, clock);
  ASSERT_TRUE(store);
  auto blocker = sqlite::Database::open(dir.file("s.db"), false, 0);
  ASSERT_TRUE(blocker);
  ASSERT_TRUE(blocker.value()->exec("BEGIN IMMEDIATE"));
  ASSERT_TRUE(store.value()->enqueue(large_event(0, 10'000)));
  ASSERT_TRUE(store.value()->enqueue(large_event(1, 10'000)));
  for (int i = 0; i < 500 && store.value()->stats().failed_batches == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(store.value()->stats().failed_batches, 0u);  // the writer holds events 0 and 1
  int accepted = 0;
  for (int i = 2; i < 10; ++i) accepted += store.value()->enqueue(large_event(i, 10'000)) ? 1 : 0;
  EXPECT_EQ(accepted, 2);
  EXPECT_EQ(store.value()->stats().dropped_for_bytes, 6u);

  ASSERT_TRUE(blocker.value()->exec("COMMIT"));
  for (int i = 0; i < 500 && store.value()->stats().written < 4; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(store.value()->stats().written, 4u);
  for (int i = 10; i < 14; ++i) EXPECT_TRUE(store.value()->enqueue(large_event(i, 10'000)));
  store.value()->stop();
  const StoreStats stats = store.value()->stats();
  EXPECT_EQ(stats.written, 8u);
  EXPECT_EQ(stats.enqueued + stats.dropped, 14u);
  EXPECT_EQ(query_number(dir.file("s.db"), "SELECT count(*) FROM events"), 8);
  EXPECT_EQ(query_number(dir.file("s.db"), "SELECT sum(dropped) FROM drops"), 6);
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
  EXPECT_EQ(query_number(dir.file("s.db"), "SELECT count(*) FROM sessions"), 100);
  EXPECT_EQ(query_number(dir.file("s.db"), "SELECT count(*) FROM events"), 100);
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

// A database of schema 7 (before attributes were stored once) upgrades: its
// rows read the same through the events view and session_timeline, and
// the store writes new sessions beside them.
TEST(Store, ASchema7DatabaseUpgradesAndReadsTheSame) {
  TempDir dir;
  const std::string path = dir.file("old.db");
  {
    auto db = sqlite::Database::open(path, true, 1000);
    ASSERT_TRUE(db);
    std::vector<Migration> up_to_7;
    for (const Migration& m : embedded_migrations()) {
      if (m.version <= 7) up_to_7.push_back(m);
    }
    ASSERT_TRUE(migrate(*db.value(), up_to_7));
    ASSERT_TRUE(db.value()->exec(
        "INSERT INTO sessions (id, stream, client_addr, connect_us) VALUES (1, 'milter:1:1',"
        " '192.0.2.9', 5000000);"
        "INSERT INTO events (session_id, source, stage, time_us, argument, attributes) VALUES"
        " (1, 'milter', 'connect', 5000000, '[192.0.2.9]', '{\"client_addr\":\"192.0.2.9\"}'),"
        " (1, 'log', 'close', 5000000, '', '{\"clock\":\"second\",\"pid\":\"7\"}'),"
        " (1, 'milter', 'close', 5000001, '', '{}')"));
  }
  FakeClock clock;
  auto store = Store::open(options_for(path), clock);
  ASSERT_TRUE(store) << store.message();
  for (int n = 1; n <= 3; ++n) store.value()->enqueue(connect_event(n));
  store.value()->stop();
  EXPECT_EQ(query_number(path, "SELECT max(version) FROM schema_version"),
            latest_schema_version());
  EXPECT_EQ(query_number(path, "SELECT count(*) FROM events WHERE attributes ="
                               " '{\"client_addr\":\"192.0.2.9\"}' AND session_id = 1"), 1);
  // Ordered as before: the log line stamped in whole seconds after the milter's close.
  EXPECT_EQ(query_number(path, "SELECT count(*) FROM (SELECT stage, source, row_number() OVER ()"
                               " AS n FROM session_timeline WHERE session_id = 1) WHERE"
                               " (n = 1 AND stage = 'connect') OR (n = 2 AND source = 'milter'"
                               " AND stage = 'close') OR (n = 3 AND source = 'log')"), 3);
  EXPECT_EQ(query_number(path, "SELECT count(*) FROM events"), 6);
  EXPECT_EQ(query_number(path, "SELECT count(*) FROM events WHERE"
                               " json_extract(attributes, '$.client_addr') LIKE '192.0.2.%'"), 4);
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
