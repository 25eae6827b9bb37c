// The analysis worker's promise to whoever stops it: a last pass that sees
// everything recorded before stop() was called, even when stop() comes in
// the middle of a pass.
#include "analysis_worker.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "migrations.h"
#include "test_support.h"

namespace smtpscope::analysis {
namespace {

constexpr std::int64_t t0 = 1'790'000'000LL * 1'000'000;

void closed_session(sqlite::Database& db, int id) {
  const std::string sid = std::to_string(id);
  const std::string at = std::to_string(t0 + id * 60'000'000LL);
  ASSERT_TRUE(db.exec("INSERT INTO sessions (id, stream, client_addr, connect_us, close_us) VALUES (" +
                      sid + ", 'milter:1:" + sid + "', '192.0.2." + sid + "', " + at + ", " +
                      at + ")"));
  ASSERT_TRUE(db.exec("INSERT INTO events (session_id, source, stage, time_us) VALUES (" + sid +
                      ", 'milter', 'connect', " + at + "), (" + sid + ", 'milter', 'close', " +
                      at + ")"));
}

// Session 1 is recorded and the worker nudged; its pass waits for the
// write lock the test holds. Session 2 is recorded and stop() called while
// that pass waits: the worker must take one more pass (it used to leave
// the loop, and session 2 to whoever analysed next).
TEST(AnalysisWorker, StopDuringAPassStillTakesALastPass) {
  testing::TempDir dir;
  const std::string path = dir.file("smtpscope.db");
  auto db = sqlite::Database::open(path, true, 5000);
  ASSERT_TRUE(db) << db.message();
  ASSERT_TRUE(db.value()->exec("PRAGMA journal_mode = WAL"));
  ASSERT_TRUE(migrate(*db.value(), embedded_migrations()));
  auto rules = load_rules("");
  ASSERT_TRUE(rules) << rules.message();

  std::mutex write_lock;
  std::unique_lock held(write_lock);
  AnalysisWorker::Options options;
  options.pass.write_lock = &write_lock;
  options.lowest_priority = false;
  auto worker = AnalysisWorker::start(path, 5000, std::move(rules).value(),
                                      std::chrono::hours(1), options);
  ASSERT_TRUE(worker) << worker.message();
  closed_session(*db.value(), 1);
  worker.value()->nudge();
  // Time for the pass to choose session 1 and wait for the lock (were it
  // slower, the test would pass without showing anything, never fail).
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  closed_session(*db.value(), 2);
  std::thread stopper([&] { worker.value()->stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  held.unlock();
  stopper.join();
  EXPECT_EQ(worker.value()->analysed(), 2);
  EXPECT_EQ(testing::query_number(path, "SELECT count(*) FROM session_analysis"), 2);
}

}  // namespace
}  // namespace smtpscope::analysis
