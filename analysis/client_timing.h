// A client's sessions over time: whether they come at a regular interval
// ("every ~60 s", a monitor or a retry schedule) and the largest burst
// ("20 connections in 1 s", parallel password guessing). Computed from the
// connect times of its sessions, any order. Pure; O(n log n).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace smtpscope::analysis {

struct ClientTiming {
  // The median gap between consecutive connections, when at least
  // `regular_min_sessions` sessions keep within 20% of it (most gaps).
  std::optional<double> regular_every_s;
  int burst = 0;  // most connections that began within one window
  double burst_window_s = 1.0;
  std::string describe() const;  // "every ~60 s; 20 connections in 1 s", "" if neither
};

constexpr int regular_min_sessions = 5;
constexpr int burst_min = 5;  // a burst smaller than this is not reported

ClientTiming client_timing(std::vector<std::int64_t> connect_us);

}  // namespace smtpscope::analysis
