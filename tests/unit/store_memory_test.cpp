// The Store's memory under a locked database, measured as the kernel sees it
// (VmRSS and VmHWM of /proc/self/status): events of ~1 MiB, each within every
// per-request limit, arriving while another connection holds the write lock.
// The queue must stay within store.queue_bytes, write everything it kept
// once the lock is gone, and give the memory back after draining.
// Its own executable: the process's memory is the measurement, and the
// allocator is tuned as the daemons tune it (tune_allocator()).
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "daemon.h"
#include "store.h"
#include "test_support.h"

namespace smtpscope {
namespace {

using testing::query_number;

constexpr std::size_t mib = 1024 * 1024;

// AddressSanitizer keeps freed memory in quarantine and adds shadow memory:
// resident sizes would measure it, not the store. The accounting is still
// checked there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool measured = false;
#else
constexpr bool measured = true;
#endif

// A field of /proc/self/status in bytes ("VmRSS:  1234 kB").
std::size_t status_bytes(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  ADD_FAILURE() << "no " << field << " in /proc/self/status";
  return 0;
}

// A policy request's worth of text in one attribute and the argument,
// about 1 MiB in all, every page written.
Event large_event(int n) {
  Event e;
  e.source = Source::policy;
  e.stage = Stage::rcpt;
  e.time_us = 1'780'000'000'000'000 + n;
  e.stream = "policy:1:" + std::to_string(n % 4);
  e.argument = std::string(512 * 1024, 'a');
  e.add("client_address", "192.0.2.7");
  e.add("client_port", std::to_string(1024 + n % 4));
  e.add("ccert_subject", std::string(512 * 1024, 'b'));
  return e;
}

template <typename Done>
bool wait_until(Done done, std::chrono::seconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

TEST(StoreMemory, ALockedDatabaseHoldsAtMostQueueBytesAndGivesThemBack) {
  tune_allocator();
  testing::TempDir dir;
  testing::FakeClock clock;
  StoreOptions options;
  options.path = dir.file("s.db");
  options.busy_timeout_ms = 20;
  options.retry_interval = std::chrono::milliseconds(50);
  options.batch_interval = std::chrono::milliseconds(20);
  options.queue_bytes = 48 * mib;  // queue_capacity stays 65,536: ~64 GiB of such events
  auto store = Store::open(options, clock);
  ASSERT_TRUE(store) << store.message();
  auto blocker = sqlite::Database::open(options.path, false, 0);
  ASSERT_TRUE(blocker) << blocker.message();
  ASSERT_TRUE(blocker.value()->exec("BEGIN IMMEDIATE"));

  const std::size_t baseline = status_bytes("VmRSS");
  constexpr int offered = 300;  // ~300 MiB, six times the bound
  int accepted = 0;
  for (int i = 0; i < offered; ++i) accepted += store.value()->enqueue(large_event(i)) ? 1 : 0;
  ASSERT_TRUE(wait_until([&] { return store.value()->stats().failed_batches > 0; },
                         std::chrono::seconds(10)));
  const std::size_t peak = status_bytes("VmHWM");
  EXPECT_GT(accepted, 40);
  EXPECT_LT(accepted, 48);
  EXPECT_EQ(store.value()->stats().written, 0u);
  if (measured) {
    EXPECT_LT(peak, baseline + options.queue_bytes + 16 * mib)
        << "baseline " << baseline / mib << " MiB, peak " << peak / mib << " MiB";
  }

  ASSERT_TRUE(blocker.value()->exec("COMMIT"));
  ASSERT_TRUE(
      wait_until([&] { return store.value()->stats().written == store.value()->stats().enqueued; },
                 std::chrono::seconds(30)));
  // The memory is handed back by the writer right after its last batch.
  if (measured) {
    const bool fell = wait_until([&] { return status_bytes("VmRSS") < baseline + 16 * mib; },
                                 std::chrono::seconds(5));
    EXPECT_TRUE(fell) << "baseline " << baseline / mib << " MiB, after draining "
                      << status_bytes("VmRSS") / mib << " MiB";
  }

  store.value()->stop();
  const StoreStats stats = store.value()->stats();
  EXPECT_EQ(stats.enqueued, static_cast<std::uint64_t>(accepted));
  EXPECT_EQ(stats.written, stats.enqueued);
  EXPECT_EQ(stats.enqueued + stats.dropped, static_cast<std::uint64_t>(offered));
  EXPECT_EQ(stats.dropped_for_bytes, stats.dropped);
  EXPECT_EQ(query_number(options.path, "SELECT count(*) FROM events"), accepted);
  EXPECT_EQ(query_number(options.path, "SELECT sum(dropped) FROM drops"), offered - accepted);
}

}  // namespace
}  // namespace smtpscope
