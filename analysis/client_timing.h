// A client's sessions over time: whether they come at a regular interval
// ("every ~60 s", a monitor or a retry schedule) and the largest burst
// ("20 connections in 1 s", parallel password guessing).
//
// TimingSums keeps it incrementally, a few numbers per client (a store can
// keep them): sessions, the intervals between consecutive connections
// (count, sum, sum of squares), the last connect, and the burst under way
// and the largest one. add() takes connections in time order (an earlier
// one than the last counts as a gap of 0 s). A gap more than
// `pause_factor` times the mean interval so far (after 3 intervals) is a
// pause, not an interval: a monitor restarted after an outage is still a
// monitor. A burst is the connections within 1 s of the burst's first.
// Regular: at least `regular_min_sessions` sessions, a mean interval of
// 1 s or more, and intervals whose standard deviation is at most
// `regular_max_variation` of their mean.
//
// ClientTiming is what the sums say at one moment (the pattern conditions
// and the reports read it). Pure; add() is O(1).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace smtpscope::analysis {

constexpr int regular_min_sessions = 5;
constexpr double regular_max_variation = 0.25;
constexpr double pause_factor = 4.0;
constexpr int burst_min = 5;  // a burst smaller than this is not reported

struct ClientTiming {
  std::int64_t sessions = 0;
  std::optional<double> mean_interval_s;   // between consecutive connections, pauses left out
  std::optional<double> regular_every_s;   // the mean interval, when regular
  int burst = 0;  // most connections that began within one window
  double burst_window_s = 1.0;
  std::string describe() const;  // "every ~60 s; 20 connections in 1 s", "" if neither
};

struct TimingSums {
  std::int64_t sessions = 0;
  std::int64_t intervals = 0;
  double interval_sum_s = 0;
  double interval_sum_sq = 0;  // of the intervals in seconds
  std::int64_t pauses = 0;
  std::int64_t last_connect_us = 0;
  std::int64_t burst_start_us = 0;
  int burst_now = 0;
  int burst_max = 0;

  // `count` connections at connect_us (a stored bucket: all at its start).
  void add(std::int64_t connect_us, int count = 1);
  ClientTiming timing() const;
};

// The timing of connections given in any order (sorted, then added).
ClientTiming client_timing(std::vector<std::int64_t> connect_us);

}  // namespace smtpscope::analysis
