#include "metrics_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>

#include "database_access.h"
#include "duration.h"
#include "helo_quirks.h"
#include "metrics_http.h"
#include "metrics_registry.h"
#include "session_reader.h"

namespace smtpscope::cli {
namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

double now_seconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// Every HELO quirk, so each has a series even at zero.
std::vector<analysis::HeloQuirk> all_quirks() {
  std::vector<analysis::HeloQuirk> quirks;
  for (int q = 0; q <= static_cast<int>(analysis::HeloQuirk::unresolved_name); ++q) {
    quirks.push_back(static_cast<analysis::HeloQuirk>(q));
  }
  return quirks;
}

Result<PopulationFilter> filter_for(const MetricsOptions& options) {
  PopulationFilter filter;
  if (!options.since.empty()) {
    auto window = parse_duration_us(options.since);
    if (!window) return window.status().context("--since");
    filter.since_us = static_cast<std::int64_t>(now_seconds() * 1e6) - window.value();
  }
  return filter;
}

Result<std::string> metrics_text(const MetricsOptions& options, const PopulationFilter& filter) {
  auto rules = analysis::load_rules(options.patterns_file);
  if (!rules) return rules.status();
  auto db = open_store(options.database, Access::read_and_record);
  if (!db) return db.status();
  // On PostgreSQL the analysis is made on each host and forwarded.
  if (sqlite::Database* file = db.value()->sqlite()) {
    auto stored = refresh_analysis(*file, rules.value(), std::cerr);
    if (!stored) return stored.status();
    if (!stored.value()) {
      return Status::error("the stored analysis is not current and the database is read-only");
    }
  }
  auto population = read_population(*db.value(), rules.value().patterns, filter);
  if (!population) return population.status().context("reading the stored analysis");
  return render_population_metrics(population.value(), rules.value().patterns, options.top,
                                   now_seconds());
}

Status write_atomically(const std::string& path, const std::string& text) {
  const std::string temporary = fmt::format("{}.tmp.{}", path, ::getpid());
  {
    std::ofstream file(temporary, std::ios::trunc | std::ios::binary);
    file << text;
    file.flush();
    if (!file) {
      std::filesystem::remove(temporary);
      return Status::error("cannot write " + temporary);
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    const std::string error = std::strerror(errno);
    std::filesystem::remove(temporary);
    return Status::error("rename " + temporary + " to " + path + ": " + error);
  }
  return Status::ok();
}

// Serves until SIGTERM or SIGINT; each scrape analyses the database again.
int serve(const MetricsOptions& options, const PopulationFilter& filter) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  auto server = MetricsHttpServer::bind(options.listen, [&options, &filter] {
    auto text = metrics_text(options, filter);
    if (text) return text.value();
    std::cerr << "smtpscope: metrics: " << text.message() << '\n';
    MetricsRegistry failed;
    failed.gauge("smtpscope_metrics_up",
                 "0: the database could not be analysed (see smtpscope's stderr).")
        .set(0);
    return failed.render();
  });
  if (!server) {
    std::cerr << "smtpscope: --listen: " << server.message() << '\n';
    return exit_usage;
  }
  server.value()->start();
  std::cerr << "smtpscope: serving metrics on port " << server.value()->port() << '\n';
  int signal = 0;
  sigwait(&stop_signals, &signal);
  server.value()->stop();
  return 0;
}

}  // namespace

std::string render_population_metrics(const Population& population,
                                      const analysis::PatternSet& patterns, std::size_t top,
                                      double now_s) {
  const auto& clients = population.clients;
  auto sessions_with = [](const std::map<std::string, std::int64_t>& counts,
                          const std::string& name) {
    auto found = counts.find(name);
    return found == counts.end() ? std::int64_t{0} : found->second;
  };
  MetricsRegistry registry;
  registry.gauge("smtpscope_analysed_sessions", "Sessions analysed (the window asked for).")
      .set(population.sessions);
  registry.gauge("smtpscope_analysed_clients", "Distinct client addresses in those sessions.")
      .set(static_cast<std::int64_t>(clients.size()));
  for (const auto& pattern : patterns.patterns) {
    registry
        .gauge("smtpscope_pattern_sessions", "Analysed sessions named by each pattern.",
               {{"pattern", pattern.name}})
        .set(sessions_with(population.sessions_with_pattern, pattern.name));
  }
  for (auto quirk : all_quirks()) {
    const std::string name(analysis::to_string(quirk));
    registry
        .gauge("smtpscope_helo_quirk_sessions", "Analysed sessions with each HELO quirk.",
               {{"quirk", name}})
        .set(sessions_with(population.sessions_with_quirk, name));
  }
  const std::size_t shown = std::min({top, clients.size(), max_top_clients});
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& client = clients[i];
    const double score = client.anomaly.score;
    registry.gauge_from("smtpscope_client_anomaly_score",
                        "Anomaly score of the most anomalous clients (top N only).",
                        {{"client", client.client_addr}}, [score] { return score; });
    registry
        .gauge("smtpscope_client_sessions", "Analysed sessions of the most anomalous clients.",
               {{"client", client.client_addr}})
        .set(client.session_count);
  }
  registry.gauge_from("smtpscope_metrics_generated_timestamp_seconds",
                      "When these metrics were computed (Unix time).", {},
                      [now_s] { return now_s; });
  return registry.render();
}

int run_metrics(const MetricsOptions& options) {
  if (!options.out.empty() && !options.listen.empty()) {
    std::cerr << "smtpscope: metrics: --out and --listen exclude each other\n";
    return exit_usage;
  }
  auto filter = filter_for(options);
  if (!filter) {
    std::cerr << "smtpscope: " << filter.message() << '\n';
    return exit_usage;
  }
  if (!options.listen.empty()) return serve(options, filter.value());
  auto text = metrics_text(options, filter.value());
  if (!text) {
    std::cerr << "smtpscope: " << text.message() << '\n';
    return exit_failure;
  }
  if (options.out.empty()) {
    std::cout << text.value();
    return std::cout ? 0 : exit_failure;
  }
  if (Status written = write_atomically(options.out, text.value()); !written) {
    std::cerr << "smtpscope: " << written.message() << '\n';
    return exit_failure;
  }
  return 0;
}

}  // namespace smtpscope::cli
