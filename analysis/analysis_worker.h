// Analyses ended sessions in the background, off Postfix's path: a thread
// with its own database connection runs analyse_pending every interval and
// once more when stopped, so the milter's and policy server's answers never
// wait for it (they only hand events to the store's queue). A failure (a
// locked database, a full disk) is logged, rate-limited, and retried at the
// next interval; it never stops the process that owns the worker.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "rate_limiter.h"
#include "result.h"
#include "sqlite.h"
#include "stored_analysis.h"

namespace smtpscope::analysis {

class AnalysisWorker {
 public:
  // Opens its own connection to the (already migrated) database at path.
  static Result<std::unique_ptr<AnalysisWorker>> start(const std::string& path,
                                                       int busy_timeout_ms, AnalysisRules rules,
                                                       std::chrono::milliseconds interval);
  ~AnalysisWorker();
  AnalysisWorker(const AnalysisWorker&) = delete;
  AnalysisWorker& operator=(const AnalysisWorker&) = delete;

  // Runs a last pass and joins the thread; later calls do nothing.
  void stop();
  std::int64_t analysed() const { return analysed_.load(); }

 private:
  AnalysisWorker(std::unique_ptr<sqlite::Database> db, AnalysisRules rules,
                 std::chrono::milliseconds interval);
  void run();
  void pass();

  std::unique_ptr<sqlite::Database> db_;
  AnalysisRules rules_;
  std::chrono::milliseconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<std::int64_t> analysed_{0};
  RateLimiter failures_{std::chrono::seconds(60)};
  std::thread thread_;
};

}  // namespace smtpscope::analysis
