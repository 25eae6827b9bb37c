// A Prometheus histogram with fixed bucket upper bounds (given at creation,
// ascending, +Inf implied). observe() is lock-free: one relaxed atomic add
// for the bucket and a compare-exchange for the sum. snapshot() reads the
// buckets cumulatively; its count is the sum of the buckets read, so the
// +Inf bucket and _count always agree even while observations go on.
// Thread-safe; owned by the registry, which hands out stable references.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace smtpscope {

class Histogram {
 public:
  struct Snapshot {
    std::vector<double> bounds;          // upper bounds, without +Inf
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };

  // Precondition: bounds strictly ascending and finite.
  explicit Histogram(std::vector<double> bounds);

  void observe(double value);
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

}  // namespace smtpscope
