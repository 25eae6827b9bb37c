#include "client_timing.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace smtpscope::analysis {
namespace {

// Regular when four in five gaps are within 20% of the median gap (and the
// median is at least a second: connections in a burst are not a schedule).
std::optional<double> regular_interval(const std::vector<std::int64_t>& sorted) {
  if (sorted.size() < static_cast<std::size_t>(regular_min_sessions)) return std::nullopt;
  std::vector<double> gaps;
  for (std::size_t i = 1; i < sorted.size(); ++i) {
    gaps.push_back(static_cast<double>(sorted[i] - sorted[i - 1]) / 1e6);
  }
  std::vector<double> ordered = gaps;
  std::nth_element(ordered.begin(), ordered.begin() + ordered.size() / 2, ordered.end());
  const double median = ordered[ordered.size() / 2];
  if (median < 1.0) return std::nullopt;
  const auto close = std::count_if(gaps.begin(), gaps.end(), [median](double g) {
    return std::abs(g - median) <= 0.2 * median;
  });
  if (close * 5 < static_cast<long>(gaps.size()) * 4) return std::nullopt;
  return median;
}

int largest_burst(const std::vector<std::int64_t>& sorted, std::int64_t window_us) {
  int best = 0;
  std::size_t first = 0;
  for (std::size_t last = 0; last < sorted.size(); ++last) {
    while (sorted[last] - sorted[first] >= window_us) ++first;
    best = std::max(best, static_cast<int>(last - first + 1));
  }
  return best;
}

std::string rounded(double seconds) {
  if (seconds >= 7200) return fmt::format("~{:.0f} h", seconds / 3600);
  if (seconds >= 120) return fmt::format("~{:.0f} min", seconds / 60);
  return fmt::format("~{:.0f} s", seconds);
}

}  // namespace

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
  ClientTiming t;
  t.regular_every_s = regular_interval(connect_us);
  t.burst = largest_burst(connect_us, static_cast<std::int64_t>(t.burst_window_s * 1e6));
  return t;
}

}  // namespace smtpscope::analysis
