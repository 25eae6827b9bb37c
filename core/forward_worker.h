// Forwards a local SQLite file to the fleet store in the background: a
// thread with its own connections to both runs Forwarder batches
// (pg_forwarder.h) every interval until caught up, off Postfix's path.
//
// Promises:
//  - The sensors never wait for PostgreSQL: they write the local file as
//    on one host; while the fleet store is unreachable or refuses writes,
//    the rows wait there (the spool, bounded by the Store) and the worker
//    reconnects every interval, then sends them in order.
//  - A failure names the URL without its password; it is logged at once
//    the first time, then rate-limited, and a recovery is logged.
//  - Several processes on one file (milter, policy server, ingest) take
//    turns: a pass runs only while it holds an advisory lock on
//    DATABASE-forward.lock.
//  - stop() runs a last pass (the rows of a clean stop reach the fleet
//    store when it is up) of at most about 10 s: a longer backlog stays in
//    the file and goes at the next start.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "config.h"
#include "metrics_registry.h"
#include "pg_connection.h"
#include "pg_forwarder.h"
#include "pg_url.h"
#include "rate_limiter.h"
#include "result.h"
#include "sqlite.h"

namespace smtpscope::pg {

struct ForwardTarget {
  Url url;
  std::optional<std::string> password;
  std::string host;  // names the sessions that have none
};

// The fleet store the configuration names (database.url; the password from
// database.password_file or the environment), or nullopt without one. A bad
// URL or an unreadable password file is an error (a configuration error:
// the caller exits 2).
Result<std::optional<ForwardTarget>> forward_target(const Config& config);

// daemon.host, else this machine's host name.
std::string recording_host(const Config& config);

class ForwardWorker {
 public:
  // Opens its own connection to the (already migrated) file at path; the
  // background thread's first pass starts at once.
  static Result<std::unique_ptr<ForwardWorker>> start(const std::string& path,
                                                      int busy_timeout_ms, ForwardTarget target,
                                                      std::chrono::milliseconds interval);
  // The same without the thread: passes run by forward_all() only.
  static Result<std::unique_ptr<ForwardWorker>> open(const std::string& path,
                                                     int busy_timeout_ms, ForwardTarget target);
  // The worker the configuration asks for, or nullptr without database.url.
  static Result<std::unique_ptr<ForwardWorker>> from_config(const Config& config);
  ~ForwardWorker();
  ForwardWorker(const ForwardWorker&) = delete;
  ForwardWorker& operator=(const ForwardWorker&) = delete;

  // Runs a last pass and joins the thread; later calls do nothing.
  void stop();
  std::int64_t forwarded_events() const { return forwarded_.load(); }

  // smtpscope_forward_events_total, smtpscope_forward_failures_total and
  // smtpscope_forward_connected (1 while the last pass reached the fleet
  // store); the registry must not render once the worker is gone.
  void export_metrics(MetricsRegistry& registry);

  // One pass now, on the caller's thread (ingest's end, `db forward`):
  // batches until caught up, waiting for another process's pass to end.
  // The error of the first batch that failed. progress, when set, is told
  // the events sent so far after each batch.
  Status forward_all(const std::function<void(std::int64_t)>& progress = nullptr);

 private:
  ForwardWorker(std::unique_ptr<sqlite::Database> db, ForwardTarget target, int lock_fd);
  void run();
  void pass();
  Status connect();
  Status send_until_caught_up(const std::function<void(std::int64_t)>& progress);
  void report_failure(const Status& failed);

  std::unique_ptr<sqlite::Database> db_;
  ForwardTarget target_;
  std::chrono::milliseconds interval_{1000};
  int lock_fd_;
  std::unique_ptr<Connection> fleet_;
  std::unique_ptr<Forwarder> forwarder_;
  bool failing_ = false;
  std::mutex pass_mutex_;  // one pass at a time (the thread's, forward_all's)
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<std::int64_t> forwarded_{0};
  std::atomic<std::int64_t> failed_passes_{0};
  std::atomic<bool> connected_{false};
  RateLimiter failures_{std::chrono::seconds(60)};
  std::thread thread_;
};

}  // namespace smtpscope::pg
