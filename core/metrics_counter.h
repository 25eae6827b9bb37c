// A Prometheus counter or gauge value held by the daemon: one relaxed atomic,
// so counting on a hot path (a milter callback, a policy request) costs one
// uncontended atomic add and never a lock. Read at scrape time by the
// MetricsRegistry. A Counter only goes up; a Gauge goes up and down.
// Thread-safe; owned by the registry, which hands out stable references.
#pragma once

#include <atomic>
#include <cstdint>

namespace smtpscope {

class Counter {
 public:
  void inc(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void add(std::int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  void set(std::int64_t n) { value_.store(n, std::memory_order_relaxed); }
  std::int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

}  // namespace smtpscope
