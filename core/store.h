// The Store: sensors enqueue Events from any thread; one writer thread owns
// the SQLite connection and commits them in batches (every batch_size events
// or batch_interval, whichever comes first), in WAL mode with a busy timeout,
// so several processes can share one database file.
//
// Promises:
//  - enqueue() never blocks on the database: when the bounded queue is full
//    the event is dropped, counted, logged (rate-limited) and recorded in the
//    drops table once the database is writable (fail-open).
//  - The queue is bounded twice: by events (queue_capacity) and by bytes
//    (queue_bytes, the memory_bytes() of every event held: those queued and
//    the batch the writer is committing or retrying). An event that would
//    pass either bound is dropped as above; the log line names the bound.
//  - Memory goes back after a burst: once the queue has drained after
//    holding at least release_after_bytes, free heap is returned to the
//    kernel (malloc_trim); the ordinary write path never pays for it.
//  - A batch that fails to commit (locked, read-only, full disk) is rolled
//    back and retried; nothing is half-written.
//  - stop() drains the queue and commits before returning (clean stop).
//  - With options.spool_max_events set (the file forwards to a fleet store,
//    forward_spool.h), a batch that would take the events not yet forwarded
//    past that bound is dropped, counted (dropped_for_spool) and logged
//    (rate-limited), and its drops recorded: a fleet store down for long
//    fills no disk.
//  - With options.metrics set, the store exports its queue depth, drops by
//    bound, batches, commit latency, database errors and the events it
//    recorded (by source and stage) there; counting happens on the writer
//    thread and in the atomics enqueue() already kept, so the sensors' path
//    pays nothing more.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "clock.h"
#include "event.h"
#include "event_sink.h"
#include "metrics_registry.h"
#include "result.h"
#include "sqlite.h"

namespace smtpscope {

struct StoreOptions {
  std::string path;
  int busy_timeout_ms = 5000;
  std::size_t queue_capacity = 65536;
  std::size_t queue_bytes = std::size_t{256} * 1024 * 1024;
  std::size_t batch_size = 4096;
  std::chrono::milliseconds batch_interval{200};
  std::chrono::milliseconds retry_interval{1000};
  std::string drop_source = "milter";  // names the sensor in drops rows
  std::size_t spool_max_events = 0;     // 0: the file does not forward (no bound)
  // Not owned; outlives the Store, and nothing may render it (scrape) once
  // the Store is destroyed: its callbacks read the Store.
  MetricsRegistry* metrics = nullptr;
};

struct StoreStats {
  std::uint64_t enqueued = 0;
  std::uint64_t written = 0;
  std::uint64_t dropped = 0;
  std::uint64_t dropped_for_bytes = 0;  // of `dropped`: queue_bytes was reached
  std::uint64_t dropped_for_spool = 0;  // of `dropped`: spool_max_events was reached
  std::uint64_t batches = 0;
  std::uint64_t failed_batches = 0;
  std::uint64_t lost = 0;  // accepted, then given up at stop: the database stayed unwritable
};

// Opens the database (creating it), sets WAL and applies migrations.
Result<std::unique_ptr<sqlite::Database>> open_database(const std::string& path,
                                                        int busy_timeout_ms);

class Store final : public EventSink {
 public:
  // A drained queue that held this many bytes gives free memory back.
  static constexpr std::size_t release_after_bytes = std::size_t{16} * 1024 * 1024;

  static Result<std::unique_ptr<Store>> open(StoreOptions options, const Clock& clock);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Thread-safe. False when the event was dropped because the queue is full
  // (by count or by bytes) or the store is stopping.
  bool enqueue(Event event);
  bool submit(Event event) override { return enqueue(std::move(event)); }

  // Drains, commits and joins the writer. Idempotent.
  void stop();

  StoreStats stats() const;

  struct QueueDepth {
    std::size_t events = 0;
    std::size_t bytes = 0;  // queued, plus the batch the writer holds
  };
  QueueDepth queue_depth() const;

 private:
  struct Writer;
  Store(StoreOptions options, const Clock& clock, std::unique_ptr<Writer> writer);
  void run();
  enum class Bound { events, bytes };
  void drop(Bound reached, std::size_t event_bytes);
  bool spool_full(std::size_t batch_events);
  void drop_for_spool(std::size_t batch_events);
  std::vector<Event> take_batch();
  void settle(std::size_t written_bytes);
  void write_with_retry(std::vector<Event>& batch);
  Status write(const std::vector<Event>& batch);
  Status record_drops(std::uint64_t dropped);
  void export_metrics(MetricsRegistry& registry);
  void count_recorded(const std::vector<Event>& batch, double commit_seconds);

  StoreOptions options_;
  const Clock& clock_;
  std::unique_ptr<Writer> writer_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Event> queue_;
  std::size_t held_bytes_ = 0;  // queued, plus the batch the writer holds
  std::size_t peak_bytes_ = 0;  // most held since memory was last given back
  bool stopping_ = false;

  std::atomic<std::uint64_t> enqueued_{0};
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> dropped_for_bytes_{0};
  std::atomic<std::uint64_t> dropped_for_spool_{0};
  std::atomic<std::uint64_t> batches_{0};
  std::atomic<std::uint64_t> failed_batches_{0};
  std::atomic<std::uint64_t> lost_{0};
  std::uint64_t drops_recorded_ = 0;  // writer thread only

  // Writer thread only, after the constructor: metrics of committed batches.
  struct Recorded;
  std::unique_ptr<Recorded> recorded_;

  std::thread thread_;
};

}  // namespace smtpscope
