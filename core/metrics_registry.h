// The metrics a process exposes, and their Prometheus text exposition
// (format 0.0.4). Metrics are registered by name, help text and a label set;
// registering the same name and labels again returns the same metric, so a
// component may create its series lazily. Values live in Counter, Gauge and
// Histogram objects whose references stay valid for the registry's life, or
// are read from a callback at scrape time (for values another component
// already counts, such as the Store's atomics).
// Names follow Prometheus conventions (checked: [a-zA-Z_:][a-zA-Z0-9_:]*;
// counters end in _total); label values are escaped on the way out.
// Thread-safe: registration and render() take one mutex; updating a metric
// takes none. A callback runs under that mutex, so it must not register.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics_counter.h"
#include "metrics_histogram.h"

namespace smtpscope {

using MetricLabels = std::vector<std::pair<std::string, std::string>>;

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  Counter& counter(std::string_view name, std::string_view help, MetricLabels labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, MetricLabels labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, std::vector<double> bounds,
                       MetricLabels labels = {});
  // Values read at scrape time.
  void counter_from(std::string_view name, std::string_view help, MetricLabels labels,
                    std::function<double()> read);
  void gauge_from(std::string_view name, std::string_view help, MetricLabels labels,
                  std::function<double()> read);

  // Every metric in registration order of their names, one HELP and TYPE per name.
  std::string render() const;

 private:
  enum class Type { counter, gauge, histogram };
  struct Series;
  struct Family;
  Series& series(std::string_view name, std::string_view help, Type type, MetricLabels labels);

  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Family>> families_;
  std::map<std::string, Family*, std::less<>> by_name_;
};

// Text-format escaping: a label value escapes backslash, double quote and
// newline; HELP text escapes backslash and newline.
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view help);
// A sample value: integers without a fraction, +Inf, -Inf, NaN.
std::string format_sample(double value);

}  // namespace smtpscope
