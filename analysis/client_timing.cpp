#include "client_timing.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace smtpscope::analysis {
namespace {

constexpr std::int64_t burst_window_us = 1'000'000;
constexpr int pause_after_intervals = 3;

std::string rounded(double seconds) {
  if (seconds >= 7200) return fmt::format("~{:.0f} h", seconds / 3600);
  if (seconds >= 120) return fmt::format("~{:.0f} min", seconds / 60);
  return fmt::format("~{:.0f} s", seconds);
}

}  // namespace

void TimingSums::add(std::int64_t connect_us, int count) {
  if (count <= 0) return;
  if (sessions > 0) {
    const double gap = static_cast<double>(std::max<std::int64_t>(0, connect_us - last_connect_us)) / 1e6;
    const bool pause = intervals >= pause_after_intervals &&
                       gap > pause_factor * interval_sum_s / static_cast<double>(intervals);
    if (pause) {
      pauses += 1;
    } else {
      intervals += 1;
      interval_sum_s += gap;
      interval_sum_sq += gap * gap;
    }
  }
  // The bucket's further sessions: intervals of 0 s.
  if (count > 1) intervals += count - 1;
  if (sessions > 0 && connect_us - burst_start_us < burst_window_us && connect_us >= burst_start_us) {
    burst_now += count;
  } else {
    burst_start_us = connect_us;
    burst_now = count;
  }
  burst_max = std::max(burst_max, burst_now);
  sessions += count;
  last_connect_us = std::max(last_connect_us, connect_us);
}

ClientTiming TimingSums::timing() const {
  ClientTiming t;
  t.sessions = sessions;
  t.burst = burst_max;
  if (intervals == 0) return t;
  const double n = static_cast<double>(intervals);
  const double mean = interval_sum_s / n;
  t.mean_interval_s = mean;
  const double variance = std::max(0.0, interval_sum_sq / n - mean * mean);
  if (sessions >= regular_min_sessions && mean >= 1.0 &&
      std::sqrt(variance) <= regular_max_variation * mean) {
    t.regular_every_s = mean;
  }
  return t;
}

std::string ClientTiming::describe() const {
  std::string out;
  if (regular_every_s) out = "every " + rounded(*regular_every_s);
  if (burst >= burst_min) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{} connections in {:.0f} s", burst, burst_window_s);
  }
  return out;
}

ClientTiming client_timing(std::vector<std::int64_t> connect_us) {
  std::sort(connect_us.begin(), connect_us.end());
  TimingSums sums;
  for (std::int64_t c : connect_us) sums.add(c);
  return sums.timing();
}

}  // namespace smtpscope::analysis
