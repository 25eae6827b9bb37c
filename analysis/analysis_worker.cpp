#include "analysis_worker.h"

#include <spdlog/spdlog.h>

#include "text_escape.h"

namespace smtpscope::analysis {

Result<std::unique_ptr<AnalysisWorker>> AnalysisWorker::start(const std::string& path,
                                                              int busy_timeout_ms,
                                                              AnalysisRules rules,
                                                              std::chrono::milliseconds interval) {
  auto db = sqlite::Database::open(path, false, busy_timeout_ms);
  if (!db) return db.status().context("analysis worker");
  return std::unique_ptr<AnalysisWorker>(
      new AnalysisWorker(std::move(db).value(), std::move(rules), interval));
}

AnalysisWorker::AnalysisWorker(std::unique_ptr<sqlite::Database> db, AnalysisRules rules,
                               std::chrono::milliseconds interval)
    : db_(std::move(db)), rules_(std::move(rules)), interval_(interval) {
  thread_ = std::thread([this] { run(); });
}

AnalysisWorker::~AnalysisWorker() { stop(); }

void AnalysisWorker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AnalysisWorker::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
    lock.unlock();
    pass();
    lock.lock();
  }
}

void AnalysisWorker::pass() {
  auto done = analyse_pending(*db_, rules_, false);
  if (done) {
    analysed_ += done.value();
    return;
  }
  if (auto suppressed = failures_.admit()) {
    spdlog::warn("analysis event=failed reason={} suppressed={} retry_ms={}",
                 log_quoted(done.message()), *suppressed, interval_.count());
  }
}

}  // namespace smtpscope::analysis
