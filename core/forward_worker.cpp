#include "forward_worker.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "pg_schema.h"
#include "text_escape.h"

namespace smtpscope::pg {
namespace {

// Event rows per batch: one PostgreSQL transaction of a few MB.
constexpr std::int64_t kEventsPerBatch = 20000;
constexpr std::chrono::seconds kLongestLastPass{10};

}  // namespace

Result<std::optional<ForwardTarget>> forward_target(const Config& config) {
  if (config.database.url.empty()) return std::optional<ForwardTarget>();
  auto url = parse_url(config.database.url);
  if (!url) return url.status().context("database.url");
  auto password =
      resolve_password(PasswordSources::from_environment(config.database.password_file));
  if (!password) return password.status();
  return std::optional<ForwardTarget>(
      ForwardTarget{std::move(url).value(), std::move(password).value(), recording_host(config)});
}

std::string recording_host(const Config& config) {
  if (!config.daemon.host.empty()) return config.daemon.host;
  std::array<char, 256> name{};
  if (::gethostname(name.data(), name.size() - 1) != 0 || name[0] == '\0') return "localhost";
  return name.data();
}

Result<std::unique_ptr<ForwardWorker>> ForwardWorker::start(const std::string& path,
                                                            int busy_timeout_ms,
                                                            ForwardTarget target,
                                                            std::chrono::milliseconds interval) {
  auto worker = open(path, busy_timeout_ms, std::move(target));
  if (!worker) return worker;
  ForwardWorker& w = *worker.value();
  w.interval_ = interval;
  w.thread_ = std::thread([&w] { w.run(); });
  return worker;
}

Result<std::unique_ptr<ForwardWorker>> ForwardWorker::open(const std::string& path,
                                                           int busy_timeout_ms,
                                                           ForwardTarget target) {
  auto db = sqlite::Database::open(path, false, busy_timeout_ms);
  if (!db) return db.status().context("forwarder");
  const std::string lock_path = path + "-forward.lock";
  const int lock_fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0640);
  if (lock_fd < 0) {
    return Status::error(
        fmt::format("forwarder: cannot open {}: {}", lock_path, std::strerror(errno)));
  }
  return std::unique_ptr<ForwardWorker>(
      new ForwardWorker(std::move(db).value(), std::move(target), lock_fd));
}

Result<std::unique_ptr<ForwardWorker>> ForwardWorker::from_config(const Config& config) {
  auto target = forward_target(config);
  if (!target) return target.status();
  if (!target.value()) return std::unique_ptr<ForwardWorker>();
  return start(config.database.path, config.database.busy_timeout_ms,
               std::move(*target.value()),
               std::chrono::milliseconds(config.database.forward_interval_ms));
}

ForwardWorker::ForwardWorker(std::unique_ptr<sqlite::Database> db, ForwardTarget target,
                             int lock_fd)
    : db_(std::move(db)), target_(std::move(target)), lock_fd_(lock_fd) {}

ForwardWorker::~ForwardWorker() {
  stop();
  ::close(lock_fd_);
}

void ForwardWorker::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void ForwardWorker::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    const bool last = stopping_;
    lock.unlock();
    pass();
    lock.lock();
    if (last) break;
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

Status ForwardWorker::connect() {
  if (forwarder_) return Status::ok();
  auto opened = Connection::open(target_.url, target_.password);
  if (!opened) return opened.status();
  if (Status migrated = migrate(*opened.value(), embedded_migrations()); !migrated) {
    return migrated;
  }
  auto attached = Forwarder::attach(*db_, *opened.value(), target_.host);
  if (!attached) return attached.status();
  fleet_ = std::move(opened).value();
  forwarder_ = std::move(attached).value();
  return Status::ok();
}

Status ForwardWorker::send_until_caught_up(
    const std::function<void(std::int64_t)>& progress) {
  if (Status connected = connect(); !connected) return connected;
  const auto started = std::chrono::steady_clock::now();
  while (true) {
    auto sent = forwarder_->forward_batch(kEventsPerBatch);
    if (!sent) {
      // The connection may be gone: start again from a new one next time.
      forwarder_.reset();
      fleet_.reset();
      return sent.status();
    }
    forwarded_ += sent.value().events;
    if (progress) progress(forwarded_.load());
    if (sent.value().replaced_values > 0) {
      spdlog::warn("forward event=text-replaced values={} reason=\"bytes PostgreSQL text "
                   "cannot hold, stored as U+FFFD\"",
                   sent.value().replaced_values);
    }
    if (sent.value().caught_up) return Status::ok();
    // Stopping, a long backlog waits in the file for the next start.
    std::lock_guard lock(mutex_);
    if (stopping_ && std::chrono::steady_clock::now() - started > kLongestLastPass) {
      return Status::ok();
    }
  }
}

// The first failure of an outage is logged at once; the rest at most once
// a minute, saying how many were held back.
void ForwardWorker::report_failure(const Status& failed) {
  const auto suppressed = failures_.admit();
  if (!failing_) {
    failing_ = true;
    spdlog::error("forward event=failed url={} reason={} retry_ms={}",
                  log_quoted(display(target_.url)), log_quoted(failed.message()),
                  interval_.count());
    return;
  }
  if (suppressed) {
    spdlog::warn("forward event=failed url={} reason={} suppressed={} retry_ms={}",
                 log_quoted(display(target_.url)), log_quoted(failed.message()), *suppressed,
                 interval_.count());
  }
}

void ForwardWorker::export_metrics(MetricsRegistry& registry) {
  registry.counter_from("smtpscope_forward_events_total",
                        "Event rows this process forwarded to the fleet store.", {},
                        [this] { return static_cast<double>(forwarded_.load()); });
  registry.counter_from("smtpscope_forward_failures_total",
                        "Forwarding passes that failed (fleet store unreachable or refusing).",
                        {}, [this] { return static_cast<double>(failed_passes_.load()); });
  registry.gauge_from("smtpscope_forward_connected",
                      "1 while the last forwarding pass of this process reached the fleet store.",
                      {}, [this] { return connected_.load() ? 1.0 : 0.0; });
}

void ForwardWorker::pass() {
  std::lock_guard turn(pass_mutex_);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) return;  // another process forwards
  Status sent = send_until_caught_up(nullptr);
  ::flock(lock_fd_, LOCK_UN);
  connected_ = static_cast<bool>(sent);
  if (!sent) {
    ++failed_passes_;
    report_failure(sent);
    return;
  }
  if (failing_) {
    failing_ = false;
    spdlog::info("forward event=recovered url={}", log_quoted(display(target_.url)));
  }
}

Status ForwardWorker::forward_all(const std::function<void(std::int64_t)>& progress) {
  std::lock_guard turn(pass_mutex_);
  if (::flock(lock_fd_, LOCK_EX) != 0) {
    return Status::error(fmt::format("forwarder: cannot lock: {}", std::strerror(errno)));
  }
  Status sent = send_until_caught_up(progress);
  ::flock(lock_fd_, LOCK_UN);
  return sent;
}

}  // namespace smtpscope::pg
