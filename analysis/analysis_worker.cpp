#include "analysis_worker.h"

#include <fmt/format.h>

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "text_escape.h"

namespace smtpscope::analysis {

Result<std::unique_ptr<AnalysisWorker>> AnalysisWorker::start(const std::string& path,
                                                              int busy_timeout_ms,
                                                              AnalysisRules rules,
                                                              std::chrono::milliseconds interval,
                                                              Options options) {
  auto db = open_for_analysis(path, busy_timeout_ms);
  if (!db) return db.status().context("analysis worker");
  const std::string lock_path = path + "-analysis.lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd < 0) {
    return Status::error(fmt::format("analysis worker: cannot open {}: {}", lock_path,
                                     std::strerror(errno)));
  }
  return std::unique_ptr<AnalysisWorker>(
      new AnalysisWorker(std::move(db).value(), std::move(rules), interval, lock_fd, options));
}

Result<std::unique_ptr<AnalysisWorker>> AnalysisWorker::from_config(const Config& config) {
  if (config.analysis.interval_ms <= 0) return std::unique_ptr<AnalysisWorker>();
  auto rules = load_rules(config.analysis.patterns_file);
  if (!rules) return rules.status().context("analysis.patterns_file");
  return start(config.database.path, config.database.busy_timeout_ms, std::move(rules).value(),
               std::chrono::milliseconds(config.analysis.interval_ms));
}

AnalysisWorker::AnalysisWorker(std::unique_ptr<sqlite::Database> db, AnalysisRules rules,
                               std::chrono::milliseconds interval, int lock_fd, Options options)
    : db_(std::move(db)),
      lock_fd_(lock_fd),
      rules_(std::move(rules)),
      interval_(interval),
      options_(std::move(options)) {
  options_.pass.open_too = false;
  thread_ = std::thread([this] { run(); });
}

AnalysisWorker::~AnalysisWorker() {
  stop();
  ::close(lock_fd_);
}

void AnalysisWorker::nudge() {
  {
    std::lock_guard lock(mutex_);
    nudged_ = true;
  }
  wake_.notify_all();
}

void AnalysisWorker::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AnalysisWorker::run() {
  // The lowest CPU priority for this thread alone (Linux: nice is per
  // thread): on a busy machine Postfix and the recording threads go first
  // and the analysis catches up when the CPU is free.
  if (options_.lowest_priority &&
      ::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 19) != 0) {
    spdlog::debug("analysis event=nice-failed reason={}", log_quoted(std::strerror(errno)));
  }
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait_for(lock, interval_, [this] { return stopping_ || nudged_; });
    // Asked to stop during a pass: one more, which sees what came since.
    const bool last = stopping_;
    nudged_ = false;
    lock.unlock();
    pass();
    lock.lock();
    if (last) return;
  }
}

void AnalysisWorker::pass() {
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) return;  // another worker's turn
  auto done = analyse_pending(*db_, rules_, options_.pass);
  ::flock(lock_fd_, LOCK_UN);
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
