#include "pattern_timeline.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "text_escape.h"
#include "time_view.h"

namespace smtpscope::cli {
namespace {

constexpr std::int64_t minute_us = 60'000'000;
constexpr std::int64_t hour_us = 60 * minute_us;
constexpr std::int64_t day_us = 24 * hour_us;
constexpr const char* palette[] = {"#d1495b", "#edae49", "#00798c", "#30638e", "#8e5572",
                                   "#66a182", "#e07a5f", "#3d405b", "#9a9a9a"};

// Rounded down to a multiple of unit (floor, also before 1970); a time
// within one unit of the lowest is kept as it is (no overflow).
std::int64_t floor_to(std::int64_t t, std::int64_t unit) {
  if (t < std::numeric_limits<std::int64_t>::min() + unit) return t;
  const std::int64_t q = t / unit;
  return (q * unit > t ? q - 1 : q) * unit;
}

// A round step for about four gridlines up to peak: 1, 2, 5, 10, 20, 50 ...
long long grid_step(long long peak) {
  for (long long magnitude = 1;; magnitude *= 10) {
    for (long long m : {1, 2, 5}) {
      if (m * magnitude * 4 >= peak) return m * magnitude;
    }
  }
}

std::string axis_label(std::int64_t t, std::int64_t bucket_us) {
  const std::string text = utc_text(t);  // "2026-11-25 09:46:40 UTC", or a raw form
  if (text.size() != 23 || text.compare(19, 4, " UTC") != 0) return text;
  return bucket_us < day_us ? text.substr(5, 11) : text.substr(0, 10);
}

std::string unit_name(std::int64_t bucket_us) {
  if (bucket_us == minute_us) return "minute";
  if (bucket_us == hour_us) return "hour";
  if (bucket_us == day_us) return "day";
  return fmt::format("{} days", bucket_us / day_us);
}

}  // namespace

PatternTimeline pattern_timeline(const std::vector<TimedCount>& sessions,
                                 std::size_t max_series, std::size_t max_buckets) {
  PatternTimeline out;
  std::map<std::string, std::int64_t> totals;
  std::int64_t first = std::numeric_limits<std::int64_t>::max();
  std::int64_t last = std::numeric_limits<std::int64_t>::min();
  for (const auto& t : sessions) {
    out.sessions += t.count;
    first = std::min(first, t.at_us);
    last = std::max(last, t.at_us);
    if (t.pattern.empty()) continue;
    out.sessions_with_pattern += t.count;
    totals[t.pattern] += t.count;
  }
  if (out.sessions > 0) {
    out.first_us = first;
    out.last_us = last;
  }
  if (out.sessions_with_pattern == 0) return out;
  std::vector<std::pair<std::string, std::int64_t>> ranked(totals.begin(), totals.end());
  std::stable_sort(ranked.begin(), ranked.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::map<std::string, std::size_t> series_of;
  for (const auto& [name, n] : ranked) {
    if (out.series.size() + 1 == max_series && ranked.size() > max_series) {
      out.series.push_back("other");
      break;
    }
    series_of[name] = out.series.size();
    out.series.push_back(name);
  }
  const double span_us = seconds_between(first, last) * 1e6;
  if (span_us <= 2.0 * hour_us) {
    out.bucket_us = minute_us;
  } else if (span_us <= 3.0 * day_us) {
    out.bucket_us = hour_us;
  } else {
    const double days = span_us / day_us + 1;
    out.bucket_us = day_us * static_cast<std::int64_t>(
                                 std::max(1.0, std::ceil(days / static_cast<double>(max_buckets))));
  }
  out.start_us = floor_to(first, out.bucket_us);
  const std::int64_t buckets =
      std::clamp<std::int64_t>(microseconds_between(out.start_us, last) / out.bucket_us + 1, 1,
                               static_cast<std::int64_t>(max_buckets));
  out.counts.assign(static_cast<std::size_t>(buckets), std::vector<std::int64_t>(out.series.size(), 0));
  for (const auto& t : sessions) {
    if (t.pattern.empty()) continue;
    const auto found = series_of.find(t.pattern);
    const std::size_t series = found == series_of.end() ? out.series.size() - 1 : found->second;
    const std::int64_t bucket = std::clamp<std::int64_t>(
        microseconds_between(out.start_us, t.at_us) / out.bucket_us, 0, buckets - 1);
    out.counts[static_cast<std::size_t>(bucket)][series] += t.count;
  }
  return out;
}

std::string pattern_timeline_svg(const PatternTimeline& t) {
  if (t.counts.empty()) return "";
  const int width = 1040, left = 56, right = 16, top = 12, plot = 220, legend_row = 20;
  const int legend_rows = static_cast<int>((t.series.size() + 2) / 3);
  const int axis_y = top + plot;
  const int height = axis_y + 40 + legend_rows * legend_row;
  std::int64_t highest = 1;
  for (const auto& bucket : t.counts) {
    std::int64_t sum = 0;
    for (std::int64_t n : bucket) sum += n;
    highest = std::max(highest, sum);
  }
  const long long step = grid_step(highest);
  const int lines = static_cast<int>((highest + step - 1) / step);
  const double peak = static_cast<double>(step) * lines;
  const double slot = static_cast<double>(width - left - right) / static_cast<double>(t.counts.size());
  const double bar = std::clamp(slot * 0.8, 1.0, 48.0);
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
      "aria-label=\"sessions per {} by pattern\">",
      width, height, unit_name(t.bucket_us));
  // Y axis: gridlines at round session counts up to the highest bar.
  for (int i = 0; i <= lines; ++i) {
    const long long value = step * i;
    const double y = axis_y - plot * static_cast<double>(value) / peak;
    svg += fmt::format("<line x1=\"{}\" y1=\"{:.1f}\" x2=\"{}\" y2=\"{:.1f}\" stroke=\"{}\"/>"
                       "<text x=\"{}\" y=\"{:.1f}\" font-size=\"11\" fill=\"#556\" "
                       "text-anchor=\"end\">{}</text>",
                       left, y, width - right, y, i == 0 ? "#889" : "#e3e5ea", left - 6, y + 4,
                       value);
  }
  svg += fmt::format("<text x=\"12\" y=\"{}\" font-size=\"11\" fill=\"#556\" "
                     "transform=\"rotate(-90 12 {})\" text-anchor=\"middle\">sessions</text>",
                     top + plot / 2, top + plot / 2);
  for (std::size_t b = 0; b < t.counts.size(); ++b) {
    const double x = left + slot * static_cast<double>(b) + (slot - bar) / 2;
    double y = axis_y;
    const std::int64_t from = t.start_us + static_cast<std::int64_t>(b) * t.bucket_us;
    for (std::size_t s = 0; s < t.series.size(); ++s) {
      const std::int64_t n = t.counts[b][s];
      if (n == 0) continue;
      const double h = plot * static_cast<double>(n) / peak;
      y -= h;
      svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
                         "fill=\"{}\"><title>{}: {} session{} ({})</title></rect>",
                         x, y, bar, h, palette[std::min(s, std::size(palette) - 1)],
                         html_escape(axis_label(from, t.bucket_us)), n, n == 1 ? "" : "s",
                         html_escape(printable(t.series[s], 100)));
    }
  }
  // X axis: about six labels, at bucket starts.
  const std::size_t every = std::max<std::size_t>(1, (t.counts.size() + 5) / 6);
  for (std::size_t b = 0; b < t.counts.size(); b += every) {
    const double x = left + slot * static_cast<double>(b) + slot / 2;
    svg += fmt::format("<line x1=\"{:.1f}\" y1=\"{}\" x2=\"{:.1f}\" y2=\"{}\" stroke=\"#889\"/>"
                       "<text x=\"{:.1f}\" y=\"{}\" font-size=\"11\" fill=\"#556\" "
                       "text-anchor=\"middle\">{}</text>",
                       x, axis_y, x, axis_y + 4, x, axis_y + 17,
                       html_escape(axis_label(
                           t.start_us + static_cast<std::int64_t>(b) * t.bucket_us, t.bucket_us)));
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#556\" text-anchor=\"end\">"
                     "time (UTC), one bar per {}</text>",
                     width - right, axis_y + 32, unit_name(t.bucket_us));
  for (std::size_t s = 0; s < t.series.size(); ++s) {
    const int x = left + static_cast<int>(s % 3) * 330;
    const int y = axis_y + 44 + static_cast<int>(s / 3) * legend_row;
    svg += fmt::format("<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{}\"/>"
                       "<text x=\"{}\" y=\"{}\" font-size=\"12\" fill=\"#1d2330\">{}</text>",
                       x, y, palette[std::min(s, std::size(palette) - 1)], x + 18, y + 10,
                       html_escape(printable(t.series[s], 60)));
  }
  return svg + "</svg>";
}

}  // namespace smtpscope::cli
