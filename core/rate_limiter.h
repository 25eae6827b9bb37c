// Lets a repeated warning through at most once per interval, and counts what
// it held back so the next message can say how many were suppressed.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>

namespace smtpscope {

class RateLimiter {
 public:
  explicit RateLimiter(std::chrono::milliseconds interval) : interval_(interval) {}

  // When a message may be logged now: how many were suppressed since the
  // last one. Otherwise nullopt (and the suppressed count rises).
  std::optional<std::uint64_t> admit(std::chrono::steady_clock::time_point now =
                                         std::chrono::steady_clock::now()) {
    std::lock_guard lock(mutex_);
    if (last_ && now - *last_ < interval_) {
      ++suppressed_;
      return std::nullopt;
    }
    last_ = now;
    const std::uint64_t held_back = suppressed_;
    suppressed_ = 0;
    return held_back;
  }

 private:
  std::mutex mutex_;
  std::chrono::milliseconds interval_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  std::uint64_t suppressed_ = 0;
};

}  // namespace smtpscope
