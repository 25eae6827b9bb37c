// Wall-clock time in microseconds, behind an interface so tests can inject a
// fixed or stepping clock. SystemClock is thread-safe and stateless.
#pragma once

#include <chrono>
#include <cstdint>

namespace smtpscope {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_us() const = 0;
};

class SystemClock final : public Clock {
 public:
  std::int64_t now_us() const override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace smtpscope
