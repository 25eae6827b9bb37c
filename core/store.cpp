#include "store.h"

#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <array>
#include <iterator>
#include <thread>

#include "event_writer.h"
#include "forward_spool.h"
#include "migrations.h"
#include "rate_limiter.h"

namespace smtpscope {

struct Store::Writer {
  Writer(std::unique_ptr<sqlite::Database> database, std::unique_ptr<EventWriter> event_writer,
         sqlite::Statement drops)
      : db(std::move(database)), events(std::move(event_writer)), insert_drops(std::move(drops)) {}
  std::unique_ptr<sqlite::Database> db;
  std::unique_ptr<EventWriter> events;
  sqlite::Statement insert_drops;
  RateLimiter failure_log{std::chrono::seconds(10)};
  RateLimiter drop_log{std::chrono::seconds(10)};
  RateLimiter byte_drop_log{std::chrono::seconds(10)};
  RateLimiter spool_drop_log{std::chrono::seconds(10)};
};

// The series of committed events, created on first use (writer thread).
struct Store::Recorded {
  MetricsRegistry& registry;
  Histogram& batch_events;
  Histogram& commit_seconds;
  std::array<std::array<Counter*, 64>, 3> events{};  // [source][stage]
};

namespace {

// Switching a new file to WAL needs an exclusive lock and does not wait in
// SQLite's busy handler: the milter and the policy server starting together
// on a new database collided here (measured: 19 of 30 simultaneous starts
// had one daemon exit with "database is locked"). Retries until the busy
// timeout.
Status set_wal_mode(sqlite::Database& db, int busy_timeout_ms) {
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(busy_timeout_ms);
  for (;;) {
    // journal_mode=WAL reports its result as a row; exec() ignores rows.
    Status wal = db.exec("PRAGMA journal_mode = WAL");
    if (wal || !db.busy() || std::chrono::steady_clock::now() >= deadline) return wal;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

Result<std::unique_ptr<sqlite::Database>> open_database(const std::string& path,
                                                        int busy_timeout_ms) {
  auto db = sqlite::Database::open(path, true, busy_timeout_ms);
  if (!db) return db.status();
  auto& handle = *db.value();
  if (Status wal = set_wal_mode(handle, busy_timeout_ms); !wal) {
    return wal.context("set WAL mode on " + path);
  }
  if (Status sync = handle.exec("PRAGMA synchronous = NORMAL"); !sync) {
    return sync.context("set synchronous on " + path);
  }
  // Checkpoint every ~40 MiB of WAL instead of SQLite's 4 MiB: a page changed
  // by many batches is copied into the database once (measured: +17% events/s
  // in bench/store_bench); the file is cut back to 64 MiB after a checkpoint.
  if (Status wal_size = handle.exec("PRAGMA wal_autocheckpoint = 10000; "
                                    "PRAGMA journal_size_limit = 67108864");
      !wal_size) {
    return wal_size.context("set WAL checkpointing on " + path);
  }
  if (Status migrated = migrate(handle, embedded_migrations()); !migrated) {
    return migrated.context("schema of " + path);
  }
  return std::move(db).value();
}

Result<std::unique_ptr<Store>> Store::open(StoreOptions options, const Clock& clock) {
  auto db = open_database(options.path, options.busy_timeout_ms);
  if (!db) return db.status();
  auto events = EventWriter::create(*db.value());
  if (!events) return events.status();
  auto insert_drops =
      db.value()->prepare("INSERT INTO drops (time_us, source, dropped) VALUES (?1, ?2, ?3)");
  if (!insert_drops) return insert_drops.status();
  auto writer = std::make_unique<Writer>(std::move(db).value(), std::move(events).value(),
                                         std::move(insert_drops).value());
  return std::unique_ptr<Store>(new Store(std::move(options), clock, std::move(writer)));
}

Store::Store(StoreOptions options, const Clock& clock, std::unique_ptr<Writer> writer)
    : options_(std::move(options)), clock_(clock), writer_(std::move(writer)) {
  if (options_.metrics) export_metrics(*options_.metrics);
  thread_ = std::thread([this] { run(); });
}

void Store::export_metrics(MetricsRegistry& registry) {
  auto stat = [this](std::uint64_t StoreStats::*field) {
    return [this, field] { return static_cast<double>(stats().*field); };
  };
  registry.counter_from("smtpscope_events_enqueued_total",
                        "Events accepted into the store's queue.", {}, stat(&StoreStats::enqueued));
  registry.counter_from("smtpscope_events_dropped_total",
                        "Events dropped because a bound was reached, by the bound.",
                        {{"cause", "queue_events"}}, [this] {
                          const StoreStats s = stats();
                          return static_cast<double>(s.dropped - s.dropped_for_bytes -
                                                     s.dropped_for_spool);
                        });
  registry.counter_from("smtpscope_events_dropped_total",
                        "Events dropped because a bound was reached, by the bound.",
                        {{"cause", "queue_bytes"}}, stat(&StoreStats::dropped_for_bytes));
  registry.counter_from("smtpscope_events_dropped_total",
                        "Events dropped because a bound was reached, by the bound.",
                        {{"cause", "spool"}}, stat(&StoreStats::dropped_for_spool));
  registry.counter_from("smtpscope_events_lost_total",
                        "Events accepted, then given up at stop (database not writable).", {},
                        stat(&StoreStats::lost));
  registry.counter_from("smtpscope_store_batches_total", "Batches committed to the database.",
                        {}, stat(&StoreStats::batches));
  registry.counter_from("smtpscope_database_errors_total",
                        "Batches that failed to commit (locked, read-only, full disk); each is "
                        "rolled back and retried.",
                        {}, stat(&StoreStats::failed_batches));
  registry.gauge_from("smtpscope_queue_events", "Events waiting in the store's queue.", {},
                      [this] { return static_cast<double>(queue_depth().events); });
  registry.gauge_from("smtpscope_queue_bytes",
                      "Bytes of memory held by queued events and the batch being written.", {},
                      [this] { return static_cast<double>(queue_depth().bytes); });
  registry.gauge_from("smtpscope_queue_capacity_events", "The queue's bound in events.", {},
                      [this] { return static_cast<double>(options_.queue_capacity); });
  registry.gauge_from("smtpscope_queue_capacity_bytes", "The queue's bound in bytes.", {},
                      [this] { return static_cast<double>(options_.queue_bytes); });
  recorded_ = std::make_unique<Recorded>(Recorded{
      registry,
      registry.histogram("smtpscope_store_batch_events", "Events per committed batch.",
                         {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000}),
      registry.histogram("smtpscope_store_commit_seconds",
                         "Time to write and commit one batch (BEGIN to COMMIT).",
                         {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                          2.5, 5, 10}),
      {}});
}

void Store::count_recorded(const std::vector<Event>& batch, double commit_seconds) {
  if (!recorded_) return;
  recorded_->commit_seconds.observe(commit_seconds);
  if (!batch.empty()) recorded_->batch_events.observe(static_cast<double>(batch.size()));
  for (const Event& event : batch) {
    const auto source = static_cast<std::size_t>(event.source);
    const auto stage = static_cast<std::size_t>(event.stage);
    if (source >= recorded_->events.size() || stage >= recorded_->events[source].size()) continue;
    Counter*& counter = recorded_->events[source][stage];
    if (counter == nullptr) {
      counter = &recorded_->registry.counter(
          "smtpscope_events_recorded_total",
          "Events committed to the database, by sensor and SMTP stage.",
          {{"source", std::string(to_string(event.source))},
           {"stage", std::string(to_string(event.stage))}});
    }
    counter->inc();
  }
}

Store::~Store() { stop(); }

bool Store::enqueue(Event event) {
  const std::size_t bytes = memory_bytes(event);
  std::unique_lock lock(mutex_);
  if (queue_.size() >= options_.queue_capacity || stopping_ ||
      held_bytes_ + bytes > options_.queue_bytes) {
    const bool full = stopping_ || queue_.size() >= options_.queue_capacity;
    lock.unlock();
    drop(full ? Bound::events : Bound::bytes, bytes);
    return false;
  }
  queue_.push_back(std::move(event));
  held_bytes_ += bytes;
  peak_bytes_ = std::max(peak_bytes_, held_bytes_);
  const bool batch_ready = queue_.size() == options_.batch_size;
  lock.unlock();
  enqueued_.fetch_add(1, std::memory_order_relaxed);
  if (batch_ready) wake_.notify_one();
  return true;
}

// Counted alike whichever bound was reached; each bound has its own
// rate-limited log line, so a burst of one does not hide the other.
void Store::drop(Bound reached, std::size_t event_bytes) {
  dropped_.fetch_add(1, std::memory_order_relaxed);
  if (reached == Bound::events) {
    if (auto suppressed = writer_->drop_log.admit()) {
      spdlog::warn("store event=dropped reason=queue-full capacity={} suppressed={}",
                   options_.queue_capacity, *suppressed);
    }
    return;
  }
  dropped_for_bytes_.fetch_add(1, std::memory_order_relaxed);
  if (auto suppressed = writer_->byte_drop_log.admit()) {
    spdlog::warn(
        "store event=dropped reason=queue-bytes queue_bytes={} event_bytes={} "
        "suppressed={}",
        options_.queue_bytes, event_bytes, *suppressed);
  }
}

void Store::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

Store::QueueDepth Store::queue_depth() const {
  std::lock_guard lock(mutex_);
  return QueueDepth{queue_.size(), held_bytes_};
}

StoreStats Store::stats() const {
  return StoreStats{
      enqueued_.load(), written_.load(),        dropped_.load(), dropped_for_bytes_.load(),
      dropped_for_spool_.load(), batches_.load(),  failed_batches_.load(), lost_.load()};
}

std::vector<Event> Store::take_batch() {
  std::unique_lock lock(mutex_);
  wake_.wait_for(lock, options_.batch_interval,
                 [this] { return stopping_ || queue_.size() >= options_.batch_size; });
  // Events committed per transaction are bounded by batch_size; what is left
  // is taken by the next turn without waiting.
  const std::size_t take = std::min(queue_.size(), options_.batch_size);
  std::vector<Event> batch(std::make_move_iterator(queue_.begin()),
                           std::make_move_iterator(queue_.begin() + static_cast<long>(take)));
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<long>(take));
  return batch;
}

void Store::run() {
  for (;;) {
    std::vector<Event> batch = take_batch();
    const bool last = [this] {
      std::lock_guard lock(mutex_);
      return stopping_ && queue_.empty();
    }();
    std::size_t bytes = 0;
    for (const Event& event : batch) bytes += memory_bytes(event);
    if (!batch.empty() && spool_full(batch.size())) {
      drop_for_spool(batch.size());
      batch.clear();  // the write below records the drops
    }
    write_with_retry(batch);
    batch = std::vector<Event>();  // freed before settle() may give memory back
    settle(bytes);
    if (last) break;
  }
}

// The batch is written (or lost): its bytes leave the bound. glibc keeps
// freed heap (tune_allocator() raises its trim threshold, and blocks below
// the top of the heap are never returned without a trim), so after a burst
// the memory is handed back once, when the queue has drained.
void Store::settle(std::size_t written_bytes) {
  bool give_back = false;
  {
    std::lock_guard lock(mutex_);
    held_bytes_ -= written_bytes;
    if (queue_.empty() && peak_bytes_ >= release_after_bytes) {
      give_back = true;
      peak_bytes_ = held_bytes_;
    }
  }
  if (give_back) ::malloc_trim(0);
}

// A failure to read the spool's size is not a reason to drop: the batch
// is written, and the write reports what is wrong with the file.
bool Store::spool_full(std::size_t batch_events) {
  if (options_.spool_max_events == 0) return false;
  auto held = unforwarded_events(*writer_->db);
  return held && static_cast<std::size_t>(held.value()) + batch_events >
                     options_.spool_max_events;
}

void Store::drop_for_spool(std::size_t batch_events) {
  dropped_.fetch_add(batch_events, std::memory_order_relaxed);
  dropped_for_spool_.fetch_add(batch_events, std::memory_order_relaxed);
  if (auto suppressed = writer_->spool_drop_log.admit()) {
    spdlog::warn(
        "store event=dropped reason=spool-full spool_max_events={} events={} suppressed={}",
        options_.spool_max_events, batch_events, *suppressed);
  }
}

// Keeps a failed batch and tries again; while it waits, new events fill the
// bounded queue and beyond that are dropped, never blocking the sensors.
void Store::write_with_retry(std::vector<Event>& batch) {
  for (;;) {
    Status written = write(batch);
    if (written) return;
    failed_batches_.fetch_add(1, std::memory_order_relaxed);
    if (auto suppressed = writer_->failure_log.admit()) {
      spdlog::warn("store event=write-failed events={} suppressed={} error=\"{}\"",
                   batch.size(), *suppressed, written.message());
    }
    std::unique_lock lock(mutex_);
    if (stopping_) {
      // One last attempt after a pause; then the batch is reported lost.
      lock.unlock();
      std::this_thread::sleep_for(options_.retry_interval);
      if (Status final_try = write(batch); final_try) return;
      lost_.fetch_add(batch.size(), std::memory_order_relaxed);
      spdlog::error("store event=lost events={} reason=\"database not writable at stop\"",
                    batch.size());
      return;
    }
    wake_.wait_for(lock, options_.retry_interval, [this] { return stopping_; });
  }
}

Status Store::record_drops(std::uint64_t dropped) {
  if (dropped == drops_recorded_) return Status::ok();
  return writer_->insert_drops.bind(1, clock_.now_us())
                        .bind(2, options_.drop_source)
                        .bind(3, static_cast<std::int64_t>(dropped - drops_recorded_))
                        .run();
}

Status Store::write(const std::vector<Event>& batch) {
  const std::uint64_t dropped = dropped_.load(std::memory_order_relaxed);
  if (batch.empty() && dropped == drops_recorded_) return Status::ok();
  auto& db = *writer_->db;
  const auto started = std::chrono::steady_clock::now();
  if (Status begun = db.exec("BEGIN IMMEDIATE"); !begun) return begun.context("begin batch");
  auto saved = writer_->events->checkpoint();
  Status status = Status::ok();
  for (const Event& event : batch) {
    status = writer_->events->apply(event);
    if (!status) break;
  }
  if (status) status = record_drops(dropped);
  if (status) status = db.exec("COMMIT").context("commit batch");
  if (!status) {
    (void)db.exec("ROLLBACK");
    writer_->events->restore(std::move(saved));
    return status;
  }
  drops_recorded_ = dropped;
  count_recorded(batch, std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                            .count());
  written_.fetch_add(batch.size(), std::memory_order_relaxed);
  batches_.fetch_add(1, std::memory_order_relaxed);
  return Status::ok();
}

}  // namespace smtpscope
