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
  for (int q = 0; q <= static_cast<int>(analysis::HeloQuirk::changed_in_session); ++q) {
    quirks.push_back(static_cast<analysis::HeloQuirk>(q));
  }
  return quirks;
}

struct Population {
  analysis::PatternSet patterns;
  std::vector<SessionRecord> sessions;
  std::vector<ClientSummary> clients;
};

Result<analysis::PatternSet> patterns_for(const std::string& file) {
  return file.empty() ? analysis::parse_patterns(analysis::builtin_patterns_yaml(),
                                                 "built-in patterns")
                      : analysis::load_patterns(file);
}

Result<SessionFilter> filter_for(const MetricsOptions& options) {
  SessionFilter filter;
  filter.limit = options.limit;
  if (!options.since.empty()) {
    auto window = parse_duration_us(options.since);
    if (!window) return window.status().context("--since");
    filter.since_us = static_cast<std::int64_t>(now_seconds() * 1e6) - window.value();
  }
  return filter;
}

Result<std::unique_ptr<Population>> analyse_population(const MetricsOptions& options,
                                                       const SessionFilter& filter) {
  auto patterns = patterns_for(options.patterns_file);
  if (!patterns) return patterns.status();
  auto db = open_database_at(options.database, Access::read);
  if (!db) return db.status();
  auto read = read_sessions(*db.value(), filter);
  if (!read) return read.status().context("reading sessions");
  auto population = std::make_unique<Population>();
  population->patterns = std::move(patterns).value();
  population->sessions = std::move(read).value();
  population->clients = by_client(analyse(population->sessions, population->patterns));
  return population;
}

Result<std::string> metrics_text(const MetricsOptions& options, const SessionFilter& filter) {
  auto population = analyse_population(options, filter);
  if (!population) return population.status();
  const Population& p = *population.value();
  return render_population_metrics(p.clients, p.patterns, options.top, now_seconds());
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
int serve(const MetricsOptions& options, const SessionFilter& filter) {
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

std::string render_population_metrics(const std::vector<ClientSummary>& clients,
                                      const analysis::PatternSet& patterns, std::size_t top,
                                      double now_s) {
  std::map<std::string, std::size_t> by_pattern;
  std::map<std::string, std::size_t> by_quirk;
  std::size_t sessions = 0;
  for (const auto& client : clients) {
    for (const auto& session : client.sessions) {
      sessions += 1;
      std::set<std::string_view> patterns_seen;
      for (const auto* pattern : session.patterns) patterns_seen.insert(pattern->name);
      for (auto name : patterns_seen) by_pattern[std::string(name)] += 1;
      std::set<analysis::HeloQuirk> quirks_seen(session.facts.quirks.begin(),
                                                session.facts.quirks.end());
      for (auto quirk : quirks_seen) by_quirk[std::string(analysis::to_string(quirk))] += 1;
    }
  }
  MetricsRegistry registry;
  registry.gauge("smtpscope_analysed_sessions", "Sessions analysed (the window asked for).")
      .set(static_cast<std::int64_t>(sessions));
  registry.gauge("smtpscope_analysed_clients", "Distinct client addresses in those sessions.")
      .set(static_cast<std::int64_t>(clients.size()));
  for (const auto& pattern : patterns.patterns) {
    registry
        .gauge("smtpscope_pattern_sessions", "Analysed sessions named by each pattern.",
               {{"pattern", pattern.name}})
        .set(static_cast<std::int64_t>(by_pattern[pattern.name]));
  }
  for (auto quirk : all_quirks()) {
    const std::string name(analysis::to_string(quirk));
    registry
        .gauge("smtpscope_helo_quirk_sessions", "Analysed sessions with each HELO quirk.",
               {{"quirk", name}})
        .set(static_cast<std::int64_t>(by_quirk[name]));
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
        .set(static_cast<std::int64_t>(client.sessions.size()));
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
