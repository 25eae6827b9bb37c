#include "daemon.h"

#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <fstream>

namespace smtpscope {

StoreOptions store_options(const Config& config, const std::string& drop_source) {
  StoreOptions options;
  options.path = config.database.path;
  options.busy_timeout_ms = config.database.busy_timeout_ms;
  options.queue_capacity = config.store.queue_capacity;
  options.queue_bytes = config.store.queue_bytes;
  options.batch_size = config.store.batch_size;
  options.batch_interval = std::chrono::milliseconds(config.store.batch_interval_ms);
  options.retry_interval = std::chrono::milliseconds(config.store.retry_interval_ms);
  options.drop_source = drop_source;
  if (!config.database.url.empty()) options.spool_max_events = config.database.spool_max_events;
  return options;
}

PrivilegeOptions privilege_options(const Config& config) {
  return PrivilegeOptions{config.daemon.user, config.daemon.group, config.daemon.allow_root};
}

Status write_pid_file(const std::string& path) {
  if (path.empty()) return Status::ok();
  std::ofstream file(path, std::ios::trunc);
  file << ::getpid() << '\n';
  if (!file) return Status::error("cannot write pid file " + path);
  return Status::ok();
}

void block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // A file size limit (RLIMIT_FSIZE) then fails the write with EFBIG, which
  // the store retries like a full disk, instead of killing the daemon.
  std::signal(SIGXFSZ, SIG_IGN);
}

}  // namespace smtpscope

namespace smtpscope {

std::size_t raise_open_file_limit(std::size_t wanted) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < wanted) {
    rlimit raised = limit;
    raised.rlim_cur = std::min<rlim_t>(wanted, limit.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<std::size_t>(limit.rlim_cur);
}

void tune_allocator() {
  mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
  mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
}

}  // namespace smtpscope
