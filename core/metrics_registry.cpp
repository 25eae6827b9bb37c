#include "metrics_registry.h"

#include <fmt/format.h>

#include <cassert>
#include <cmath>
#include <limits>

namespace smtpscope {

struct MetricsRegistry::Series {
  MetricLabels labels;
  std::unique_ptr<Counter> counter;
  std::unique_ptr<Gauge> gauge;
  std::unique_ptr<Histogram> histogram;
  std::function<double()> read;
};

struct MetricsRegistry::Family {
  std::string name;
  std::string help;
  Type type;
  std::vector<std::unique_ptr<Series>> series;
};

namespace {

[[maybe_unused]] bool valid_name(std::string_view name) {  // checked by assert()
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool letter = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!letter && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

std::string_view type_name(int type) {
  static constexpr std::string_view names[] = {"counter", "gauge", "histogram"};
  return names[type];
}

// `{a="x",b="y"}` with an optional extra label (le); empty when no labels.
std::string label_text(const MetricLabels& labels, std::string_view extra_name = {},
                       std::string_view extra_value = {}) {
  if (labels.empty() && extra_name.empty()) return {};
  std::string text = "{";
  for (const auto& [name, value] : labels) {
    if (text.size() > 1) text += ',';
    text += fmt::format("{}=\"{}\"", name, escape_label_value(value));
  }
  if (!extra_name.empty()) {
    if (text.size() > 1) text += ',';
    text += fmt::format("{}=\"{}\"", extra_name, extra_value);
  }
  return text + "}";
}

void render_histogram(std::string& out, const std::string& name, const MetricLabels& labels,
                      const Histogram::Snapshot& snap) {
  for (std::size_t i = 0; i < snap.cumulative.size(); ++i) {
    const std::string le = i < snap.bounds.size() ? format_sample(snap.bounds[i]) : "+Inf";
    out += fmt::format("{}_bucket{} {}\n", name, label_text(labels, "le", le), snap.cumulative[i]);
  }
  out += fmt::format("{}_sum{} {}\n", name, label_text(labels), format_sample(snap.sum));
  out += fmt::format("{}_count{} {}\n", name, label_text(labels), snap.count);
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

std::string format_sample(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::trunc(value) && std::fabs(value) < 1e15) {
    return fmt::format("{}", static_cast<long long>(value));
  }
  return fmt::format("{}", value);
}

MetricsRegistry::MetricsRegistry() = default;
MetricsRegistry::~MetricsRegistry() = default;

MetricsRegistry::Series& MetricsRegistry::series(std::string_view name, std::string_view help,
                                                 Type type, MetricLabels labels) {
  assert(valid_name(name));
  assert(type != Type::counter || name.ends_with("_total"));
  for ([[maybe_unused]] const auto& [label, value] : labels) assert(valid_name(label));
  auto found = by_name_.find(name);
  if (found == by_name_.end()) {
    auto family = std::make_unique<Family>(Family{std::string(name), std::string(help), type, {}});
    found = by_name_.emplace(std::string(name), family.get()).first;
    families_.push_back(std::move(family));
  }
  Family& family = *found->second;
  assert(family.type == type);  // one name, one type: our own invariant
  for (auto& existing : family.series) {
    if (existing->labels == labels) return *existing;
  }
  family.series.push_back(std::make_unique<Series>());
  family.series.back()->labels = std::move(labels);
  return *family.series.back();
}

Counter& MetricsRegistry::counter(std::string_view name, std::string_view help,
                                  MetricLabels labels) {
  std::lock_guard lock(mutex_);
  Series& s = series(name, help, Type::counter, std::move(labels));
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& MetricsRegistry::gauge(std::string_view name, std::string_view help, MetricLabels labels) {
  std::lock_guard lock(mutex_);
  Series& s = series(name, help, Type::gauge, std::move(labels));
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& MetricsRegistry::histogram(std::string_view name, std::string_view help,
                                      std::vector<double> bounds, MetricLabels labels) {
  std::lock_guard lock(mutex_);
  Series& s = series(name, help, Type::histogram, std::move(labels));
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(std::move(bounds));
  return *s.histogram;
}

void MetricsRegistry::counter_from(std::string_view name, std::string_view help,
                                   MetricLabels labels, std::function<double()> read) {
  std::lock_guard lock(mutex_);
  series(name, help, Type::counter, std::move(labels)).read = std::move(read);
}

void MetricsRegistry::gauge_from(std::string_view name, std::string_view help, MetricLabels labels,
                                 std::function<double()> read) {
  std::lock_guard lock(mutex_);
  series(name, help, Type::gauge, std::move(labels)).read = std::move(read);
}

std::string MetricsRegistry::render() const {
  std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& family : families_) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", family->name, escape_help(family->help),
                       family->name, type_name(static_cast<int>(family->type)));
    for (const auto& s : family->series) {
      if (s->histogram) {
        render_histogram(out, family->name, s->labels, s->histogram->snapshot());
        continue;
      }
      // Held values print as integers, exact beyond 2^53; callbacks as samples.
      std::string value = "0";
      if (s->read) value = format_sample(s->read());
      else if (s->counter) value = std::to_string(s->counter->value());
      else if (s->gauge) value = std::to_string(s->gauge->value());
      out += fmt::format("{}{} {}\n", family->name, label_text(s->labels), value);
    }
  }
  return out;
}

}  // namespace smtpscope
