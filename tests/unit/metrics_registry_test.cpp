#include "metrics_registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <thread>

#include "test_support.h"

namespace smtpscope {
namespace {

bool contains(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

TEST(MetricsRegistry, CounterRendersHelpTypeAndValue) {
  MetricsRegistry registry;
  Counter& c = registry.counter("smtpscope_things_total", "Things seen.");
  c.inc();
  c.inc(41);
  EXPECT_EQ(registry.render(),
            "# HELP smtpscope_things_total Things seen.\n"
            "# TYPE smtpscope_things_total counter\n"
            "smtpscope_things_total 42\n");
}

TEST(MetricsRegistry, OneHelpAndTypePerNameAndTheSameSeriesAgain) {
  MetricsRegistry registry;
  registry.counter("smtpscope_x_total", "X.", {{"stage", "helo"}}).inc();
  registry.counter("smtpscope_x_total", "X.", {{"stage", "mail"}}).inc(2);
  registry.counter("smtpscope_x_total", "X.", {{"stage", "helo"}}).inc();  // same series
  const std::string text = registry.render();
  EXPECT_EQ(text,
            "# HELP smtpscope_x_total X.\n"
            "# TYPE smtpscope_x_total counter\n"
            "smtpscope_x_total{stage=\"helo\"} 2\n"
            "smtpscope_x_total{stage=\"mail\"} 2\n");
}

TEST(MetricsRegistry, LabelValuesAndHelpAreEscaped) {
  MetricsRegistry registry;
  registry.gauge("smtpscope_g", "Back\\slash and\nnewline.", {{"v", "a\"b\\c\nd}"}}).set(-3);
  const std::string text = registry.render();
  EXPECT_TRUE(contains(text, "# HELP smtpscope_g Back\\\\slash and\\nnewline.")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_g{v=\"a\\\"b\\\\c\\nd}\"} -3")) << text;
  EXPECT_EQ(escape_label_value("plain"), "plain");
  EXPECT_EQ(escape_label_value("\"\\\n"), "\\\"\\\\\\n");
}

TEST(MetricsRegistry, SamplesFormatIntegersFractionsAndInfinities) {
  EXPECT_EQ(format_sample(0), "0");
  EXPECT_EQ(format_sample(4096), "4096");
  EXPECT_EQ(format_sample(0.005), "0.005");
  EXPECT_EQ(format_sample(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(format_sample(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(format_sample(std::nan("")), "NaN");
}

TEST(MetricsRegistry, HistogramBucketsAreCumulativeWithInf) {
  MetricsRegistry registry;
  Histogram& h = registry.histogram("smtpscope_commit_seconds", "Commit time.", {0.01, 0.1, 1});
  // Binary fractions, so the sum is exact; 1 lands in le="1" (less or equal).
  for (double v : {0.0078125, 0.0625, 0.25, 1.0, 2.0, 3.0}) h.observe(v);
  const std::string text = registry.render();
  EXPECT_TRUE(contains(text, "# TYPE smtpscope_commit_seconds histogram")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_commit_seconds_bucket{le=\"0.01\"} 1")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_commit_seconds_bucket{le=\"0.1\"} 2")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_commit_seconds_bucket{le=\"1\"} 4")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_commit_seconds_bucket{le=\"+Inf\"} 6")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_commit_seconds_count 6")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_commit_seconds_sum 6.3203125")) << text;
}

TEST(MetricsRegistry, HistogramLabelsComeBeforeLe) {
  MetricsRegistry registry;
  registry.histogram("smtpscope_h", "H.", {1}, {{"source", "milter"}}).observe(1);
  const std::string text = registry.render();
  EXPECT_TRUE(contains(text, "smtpscope_h_bucket{source=\"milter\",le=\"1\"} 1")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_h_bucket{source=\"milter\",le=\"+Inf\"} 1")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_h_count{source=\"milter\"} 1")) << text;
}

TEST(MetricsRegistry, CallbacksAreReadAtScrapeTime) {
  MetricsRegistry registry;
  double value = 1;
  registry.gauge_from("smtpscope_depth", "Depth.", {}, [&value] { return value; });
  registry.counter_from("smtpscope_read_total", "Read.", {{"cause", "x"}}, [] { return 7.0; });
  EXPECT_TRUE(contains(registry.render(), "smtpscope_depth 1"));
  value = 2.5;
  const std::string text = registry.render();
  EXPECT_TRUE(contains(text, "smtpscope_depth 2.5")) << text;
  EXPECT_TRUE(contains(text, "smtpscope_read_total{cause=\"x\"} 7")) << text;
}

// Counting from many threads loses nothing (relaxed atomics, no lock).
TEST(MetricsRegistry, ConcurrentCountsAddUp) {
  MetricsRegistry registry;
  Counter& c = registry.counter("smtpscope_n_total", "N.");
  Histogram& h = registry.histogram("smtpscope_v", "V.", {1, 2});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(1.5);
      }
    });
  }
  std::thread scraper([&] {
    for (int i = 0; i < 50; ++i) (void)registry.render();
  });
  for (auto& t : threads) t.join();
  scraper.join();
  EXPECT_EQ(c.value(), 40000u);
  const auto snap = h.snapshot();
  EXPECT_EQ(snap.count, 40000u);
  EXPECT_EQ(snap.cumulative, (std::vector<std::uint64_t>{0, 40000, 40000}));
  EXPECT_DOUBLE_EQ(snap.sum, 60000.0);
}

// Prometheus' own parser accepts what we write (Debian's prometheus package).
TEST(MetricsRegistry, PromtoolAcceptsTheExposition) {
  if (std::system("command -v promtool >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  }
  MetricsRegistry registry;
  registry.counter("smtpscope_events_recorded_total", "Events.", {{"source", "milter"}, {"stage", "helo"}}).inc(3);
  registry.gauge("smtpscope_queue_events", "Queue.").set(5);
  registry.gauge("smtpscope_label_test", "Odd values.", {{"v", "q\"uote\\back\nline"}}).set(1);
  registry.histogram("smtpscope_store_commit_seconds", "Commit.", {0.001, 0.01, 0.1}).observe(0.02);
  testing::TempDir dir;
  const std::string file = dir.file("m.prom");
  std::ofstream(file) << registry.render();
  const std::string command = "promtool check metrics < " + file + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe)) output += buffer;
  const int status = ::pclose(pipe);
  EXPECT_EQ(status, 0) << output;
  EXPECT_EQ(output, "") << output;
}

}  // namespace
}  // namespace smtpscope
