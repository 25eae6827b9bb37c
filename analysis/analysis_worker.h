// Analyses ended sessions in the background, off Postfix's path: a thread
// with its own database connection runs analyse_pending every interval and
// once more when stopped, so the milter's and policy server's answers never
// wait for it (they only hand events to the store's queue); the thread runs
// at the lowest CPU priority (nice 19), so a busy machine serves Postfix
// first. A failure (a
// locked database, a full disk) is logged, rate-limited, and retried at the
// next interval; it never stops the process that owns the worker. Several
// workers on one database (the milter's and the policy server's) take turns:
// a pass runs only while it holds an advisory lock on DATABASE-analysis.lock,
// and a worker that finds it held skips that pass. `smtpscope ingest` runs
// one beside its reading, at normal priority, woken by each committed batch
// (nudge), its passes in order and read before they write (PendingPass).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config.h"
#include "rate_limiter.h"
#include "result.h"
#include "sqlite.h"
#include "stored_analysis.h"

namespace smtpscope::analysis {

class AnalysisWorker {
 public:
  // Opens its own connection to the (already migrated) database at path.
  struct Options {
    PendingPass pass;             // each pass's (never open_too: that is for commands)
    bool lowest_priority = true;  // nice 19: the daemons serve Postfix first
  };
  static Result<std::unique_ptr<AnalysisWorker>> start(const std::string& path,
                                                       int busy_timeout_ms, AnalysisRules rules,
                                                       std::chrono::milliseconds interval,
                                                       Options options);
  static Result<std::unique_ptr<AnalysisWorker>> start(const std::string& path,
                                                       int busy_timeout_ms, AnalysisRules rules,
                                                       std::chrono::milliseconds interval) {
    return start(path, busy_timeout_ms, std::move(rules), interval, Options());
  }
  ~AnalysisWorker();
  AnalysisWorker(const AnalysisWorker&) = delete;
  AnalysisWorker& operator=(const AnalysisWorker&) = delete;

  // The worker the configuration asks for (analysis.interval_ms,
  // analysis.patterns_file), or nullptr when it is 0.
  static Result<std::unique_ptr<AnalysisWorker>> from_config(const Config& config);

  // Runs a pass now (when the thread is in one, right after it).
  void nudge();
  // Runs a last pass and joins the thread; later calls do nothing.
  void stop();
  std::int64_t analysed() const { return analysed_.load(); }

 private:
  AnalysisWorker(std::unique_ptr<sqlite::Database> db, AnalysisRules rules,
                 std::chrono::milliseconds interval, int lock_fd, Options options);
  void run();
  void pass();

  std::unique_ptr<sqlite::Database> db_;
  int lock_fd_;
  AnalysisRules rules_;
  std::chrono::milliseconds interval_;
  Options options_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool nudged_ = false;
  std::atomic<std::int64_t> analysed_{0};
  RateLimiter failures_{std::chrono::seconds(60)};
  std::thread thread_;
};

}  // namespace smtpscope::analysis
