#include "watch.h"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "fingerprint.h"
#include "analysis_worker.h"
#include "database_access.h"
#include "pg_url.h"
#include "ingester.h"
#include "patterns.h"
#include "session_facts.h"
#include "session_reader.h"
#include "store.h"
#include "text_escape.h"
#include "time_view.h"

namespace smtpscope::cli {
namespace {

std::atomic<bool> stopping{false};
extern "C" void stop_watching(int) { stopping = true; }

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// A session ends for the log's sake a little after the daemons close it, so
// sessions are looked for again this long after they closed.
constexpr std::int64_t settle_us = 3'000'000;

struct Shown {
  std::set<std::int64_t> sessions;
  std::map<std::string, std::string> fingerprint_of_client;
  std::map<std::string, std::string> pattern_of_client;  // "" for no pattern
};

void show(const SessionRecord& s, const analysis::PatternSet& patterns, const WatchOptions& o,
          Shown& shown) {
  const analysis::SessionFacts facts = analysis::facts_of(s);
  const auto matched = analysis::match_all(patterns, facts);
  const analysis::Fingerprint fp = analysis::fingerprint_of(s, facts);
  const std::string pattern = matched.empty() ? "" : matched.front()->name;
  std::vector<std::string> quirks;
  for (auto q : facts.quirks) quirks.emplace_back(analysis::to_string(q));
  if (!o.pattern.empty() && pattern != o.pattern) return;
  if (!o.quirk.empty() && std::find(quirks.begin(), quirks.end(), o.quirk) == quirks.end()) return;
  auto& previous = shown.fingerprint_of_client[s.client_addr];
  const bool changed = !previous.empty() && previous != fp.id;
  const bool seen_before = !previous.empty();
  previous = fp.id;
  auto& previous_pattern = shown.pattern_of_client[s.client_addr];
  const bool behaviour_changed = seen_before && previous_pattern != pattern;
  const std::string was = previous_pattern.empty() ? "no pattern" : previous_pattern;
  previous_pattern = pattern;
  const std::string helo = facts.helos.empty() ? "-" : facts.helos.back();
  if (o.json) {
    nlohmann::json line = {{"session", s.id},          {"connect_us", s.connect_us},
                           {"close_us", s.close_us ? nlohmann::json(*s.close_us) : nlohmann::json()},
                           {"client", s.client_addr}, {"helo", helo},
                           {"host", s.host.empty() ? nlohmann::json() : nlohmann::json(s.host)},
                           {"stages", facts.stages},  {"pattern", pattern.empty() ? nlohmann::json() : nlohmann::json(pattern)},
                           {"helo_quirks", quirks},   {"fingerprint", fp.id},
                           {"fingerprint_changed", changed},
                           {"behaviour_changed", behaviour_changed}};
    std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    return;
  }
  // The mail server, when the store holds several (a PostgreSQL fleet store).
  const std::string when = clock_text(s.close_us.value_or(s.connect_us)) +
                           (o.show_host ? fmt::format("  {:<20}", printable(s.host.empty() ? "-" : s.host, 20)) : "");
  std::cout << fmt::format("{}  {:<39} {:<30} {:<28} {}{}{}\n", when,
                           printable(s.client_addr, 39), printable(helo, 30), facts.stages,
                           pattern.empty() ? "-" : pattern,
                           changed ? "   [fingerprint changed]" : "",
                           behaviour_changed ? "   [behaviour changed: was " + was + "]" : "")
            << std::flush;
}

// The store watched: a PostgreSQL one as it is, an SQLite file created if
// the daemons have not yet.
Result<std::unique_ptr<sql::Connection>> open_watched(const WatchOptions& o) {
  if (pg::is_pg_url(o.database)) return open_store({o.database, o.password_file}, Access::read);
  auto db = open_database(o.database, 5000);
  if (!db) return db.status();
  return sql::over_sqlite(std::move(db).value());
}

}  // namespace

int run_watch(const WatchOptions& asked) {
  WatchOptions o = asked;
  o.show_host = o.show_host || pg::is_pg_url(o.database);
  auto rules = analysis::load_rules(o.patterns_file);
  if (!rules) {
    std::cerr << "smtpscope: " << rules.message() << '\n';
    return 2;
  }
  const analysis::PatternSet& patterns = rules.value().patterns;
  const bool fleet = pg::is_pg_url(o.database);
  if (fleet && !o.log_file.empty()) {
    std::cerr << "smtpscope: "
              << needs_local_file("watch --log", o.database).message() << '\n';
    return 2;
  }
  auto db = open_watched(o);
  if (!db) {
    std::cerr << "smtpscope: " << db.message() << '\n';
    return 1;
  }
  std::signal(SIGINT, stop_watching);
  std::signal(SIGTERM, stop_watching);
  std::thread follower;
  // Following a log, watch records the sessions' ends: it stores their
  // analysis as ingest --follow does.
  std::unique_ptr<analysis::AnalysisWorker> analyser;
  if (!o.log_file.empty()) {
    auto started = analysis::AnalysisWorker::start(o.database, 5000, rules.value(),
                                                   std::chrono::seconds(1));
    if (!started) {
      std::cerr << "smtpscope: " << started.message() << '\n';
      return 1;
    }
    analyser = std::move(started).value();
    follower = std::thread([&o] {
      ingest::IngestOptions options;
      options.follow = true;
      auto ingester = ingest::Ingester::open(o.database, 5000, options);
      if (!ingester) {
        std::cerr << "smtpscope: " << ingester.message() << '\n';
        return;
      }
      auto counts = ingester.value()->ingest(o.log_file, stopping);
      if (!counts) std::cerr << "smtpscope: " << counts.message() << '\n';
    });
  }
  Shown shown;
  std::int64_t watermark = now_us() - settle_us;
  bool failing = false;  // said once per outage
  while (!stopping) {
    SessionFilter filter;
    if (!o.client.empty()) filter.client_addr = o.client;
    filter.closed_since_us = watermark - settle_us;
    filter.limit = 10000;
    const std::int64_t polled = now_us();
    auto sessions = read_sessions(*db.value(), filter);
    if (!sessions && !failing) {
      std::cerr << "smtpscope: watch: " << sessions.message()
                << (fleet ? "; connecting again" : "; trying again") << '\n';
    }
    if (sessions && failing) std::cerr << "smtpscope: watch: reading again\n";
    failing = !sessions;
    if (!sessions && fleet) {
      // The server restarted or the network broke: a new connection (the
      // sessions of the outage are shown once it is back: the watermark
      // stays).
      if (auto again = open_watched(o)) db.value() = std::move(again).value();
    }
    if (sessions) {
      for (const auto& s : sessions.value()) {
        // Shown once it has ended and the sensors had a moment to report.
        if (shown.sessions.contains(s.id) || s.close_us.value_or(polled) > polled - 250'000) continue;
        shown.sessions.insert(s.id);
        show(s, patterns, o, shown);
      }
      watermark = polled;
      if (shown.sessions.size() > 100000) shown.sessions.clear();
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o.interval_s));
  }
  if (follower.joinable()) follower.join();
  if (analyser) analyser->stop();
  return 0;
}

}  // namespace smtpscope::cli
