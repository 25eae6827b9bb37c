#include "client_population.h"

#include "local_client.h"
#include "sql_dialect.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <set>
#include <unordered_map>

namespace smtpscope::cli {
namespace {

constexpr std::int64_t day_us = 86'400'000'000;

std::vector<std::string> words(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t start = 0; start < text.size();) {
    const std::size_t end = std::min(text.find(' ', start), text.size());
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// The first whole day of the window: earlier sessions come from
// session_analysis itself, the rest from the per-day counts.
std::int64_t first_whole_day(const PopulationFilter& filter) {
  if (!filter.since_us) return INT64_MIN / day_us;
  return *filter.since_us / day_us + (*filter.since_us % day_us != 0 ? 1 : 0);
}

// `also`: a further condition on both parts (it may use ?4, the asked client).
// Columns: client_addr, day, fingerprint, patterns, helo_quirks, sessions,
// transactions, aborted, delivered, host.
std::string shapes_query(const PopulationFilter& filter, const std::string& also = "") {
  const std::string host = (filter.host ? " AND host = ?3" : "") + also;
  std::string sql =
      "SELECT client_addr, day, fingerprint, patterns, helo_quirks, sessions, transactions,"
      " aborted, delivered, host FROM client_day_shapes WHERE day >= ?1" + host;
  if (filter.since_us) {
    sql += " UNION ALL SELECT client_addr, connect_us / 86400000000, fingerprint, patterns,"
           " helo_quirks, count(*), sum(transactions), sum(aborted), sum(delivered), host"
           " FROM session_analysis WHERE connect_us >= ?2 AND connect_us < ?1 * 86400000000" +
           host + " GROUP BY client_addr, host, 2, fingerprint, patterns, helo_quirks";
  }
  return sql;
}

void bind_window(sql::Statement& q, const PopulationFilter& filter) {
  q.bind(1, first_whole_day(filter));
  if (filter.since_us) q.bind(2, *filter.since_us);
  if (filter.host) q.bind(3, *filter.host);
}

Result<std::unordered_map<std::string, std::string>> read_fingerprints(sql::Connection& db) {
  auto q = db.prepare("SELECT id, features FROM fingerprints");
  if (!q) return q.status();
  std::unordered_map<std::string, std::string> out;
  for (;;) {
    auto row = q.value().step();
    if (!row) return row.status();
    if (!row.value()) return out;
    out[q.value().column_text(0)] = q.value().column_text(1);
  }
}

struct Shape {  // one row: `sessions` alike of a client on a day
  std::string fingerprint;
  std::vector<std::string> patterns;
  std::vector<std::string> quirks;
  std::int64_t day = 0;
  std::int64_t sessions = 0;
  std::string host;  // empty: not named (one host)
};

// Adds one row to its client's summary.
void add_shape(ClientSummary& c, const Shape& s, std::int64_t transactions, std::int64_t aborted,
               std::int64_t delivered, const std::map<std::string, const analysis::Pattern*>& known) {
  c.session_count += s.sessions;
  if (!s.host.empty()) {
    auto at = std::find_if(c.hosts.begin(), c.hosts.end(),
                           [&](const HostUse& h) { return h.host == s.host; });
    if (at == c.hosts.end()) {
      c.hosts.push_back({s.host, s.sessions});
    } else {
      at->sessions += s.sessions;
    }
  }
  c.transactions += transactions;
  c.aborted += aborted;
  c.delivered += delivered;
  for (const auto& q : s.quirks) {
    if (std::find(c.quirks.begin(), c.quirks.end(), q) == c.quirks.end()) c.quirks.push_back(q);
  }
  if (!s.patterns.empty() && known.contains(s.patterns.front())) {
    const analysis::Pattern* naming = known.at(s.patterns.front());
    auto found = std::find_if(c.pattern_counts.begin(), c.pattern_counts.end(),
                              [&](const auto& pc) { return pc.first == naming; });
    if (found == c.pattern_counts.end()) {
      c.pattern_counts.emplace_back(naming, static_cast<int>(s.sessions));
    } else {
      found->second += static_cast<int>(s.sessions);
    }
  }
  auto use = std::find_if(c.fingerprints.begin(), c.fingerprints.end(),
                          [&](const FingerprintUse& f) { return f.id == s.fingerprint; });
  if (use == c.fingerprints.end()) {
    c.fingerprints.push_back({s.fingerprint, s.sessions, ""});
  } else {
    use->sessions += s.sessions;
  }
}

// Each client's regular interval and bursts as of its newest session.
Status add_timing(sql::Connection& db, std::vector<ClientSummary>& clients) {
  std::unordered_map<std::string, ClientSummary*> by_addr;
  for (auto& c : clients) by_addr[c.client_addr] = &c;
  auto q = db.prepare(
      "SELECT client_addr, sessions, mean_interval_s, regular_every_s, burst FROM client_timing");
  if (!q) return q.status();
  auto& r = q.value();
  auto optional_real = [&r](int column) {
    return r.column_is_null(column) ? std::optional<double>() : r.column_double(column);
  };
  for (;;) {
    auto row = r.step();
    if (!row) return row.status();
    if (!row.value()) return Status::ok();
    auto found = by_addr.find(r.column_text(0));
    if (found == by_addr.end()) continue;
    analysis::ClientTiming& t = found->second->timing;
    t.sessions = r.column_int(1);
    t.mean_interval_s = optional_real(2);
    t.regular_every_s = optional_real(3);
    t.burst = static_cast<int>(r.column_int(4));
  }
}

// Clients whose sessions include a content filter's reinjection.
Result<std::set<std::string>> local_clients(sql::Connection& db) {
  auto q = db.prepare("SELECT DISTINCT client_addr FROM session_analysis WHERE local = 1");
  if (!q) return q.status();
  std::set<std::string> out;
  for (;;) {
    auto row = q.value().step();
    if (!row) return row.status();
    if (!row.value()) return out;
    out.insert(q.value().column_text(0));
  }
}

bool left_out(const std::set<std::string>& local, const std::string& client,
              const PopulationFilter& filter) {
  return !filter.include_local && client != filter.asked_client && local.contains(client);
}

// The shapes of every session of the window (not left out), grouped by
// shape: all a client's score needs of the others.
Result<std::vector<analysis::ScoredSession>> population_shapes(
    sql::Connection& db, const PopulationFilter& filter,
    const std::map<std::string, const analysis::Pattern*>& known) {
  const std::string not_local =
      filter.include_local ? ""
                           : " AND client_addr NOT IN (SELECT client_addr FROM session_analysis"
                             " WHERE local = 1 AND client_addr != ?4)";
  auto q = db.prepare("SELECT fingerprint, patterns, helo_quirks, sum(sessions) FROM (" +
                      shapes_query(filter, not_local) + ") AS shapes GROUP BY 1, 2, 3");
  if (!q) return q.status();
  bind_window(q.value(), filter);
  q.value().bind(4, filter.asked_client);
  std::vector<analysis::ScoredSession> out;
  for (;;) {
    auto row = q.value().step();
    if (!row) return row.status();
    if (!row.value()) return out;
    auto& r = q.value();
    analysis::ScoredSession s{r.column_text(0), words(r.column_text(2)), words(r.column_text(1)),
                              static_cast<int>(r.column_int(3)), 0};
    std::erase_if(s.patterns, [&](const std::string& name) { return !known.contains(name); });
    if (s.count > 0) out.push_back(std::move(s));
  }
}

}  // namespace

analysis::AnalyseProgress progress_bar(const std::string& what) {
  if (!::isatty(STDERR_FILENO)) return {};
  const auto started = std::chrono::steady_clock::now();
  return [what, started](std::int64_t done, std::int64_t total) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    std::fprintf(stderr, "\r\033[K%s: %lld of %lld sessions (%.0f%%), %.0f/s", what.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total),
                 total > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total) : 100.0,
                 seconds > 0 ? static_cast<double>(done) / seconds : 0.0);
    if (done >= total) std::fprintf(stderr, "\r\033[K");
  };
}

Result<bool> refresh_analysis(sqlite::Database& db, const analysis::AnalysisRules& rules,
                              std::ostream& notes) {
  auto stale = analysis::stale_reason(db, rules);
  if (!stale) return stale.status();
  if (db.read_only()) {
    auto behind = analysis::analysis_behind(db);
    if (!behind) return behind.status();
    if (!stale.value() && !behind.value()) return true;
    notes << "smtpscope: note: " << db.path() << " is read-only for this user and "
          << (stale.value() ? *stale.value() : "its newest sessions are not analysed yet")
          << ": analysing its sessions in memory, without storing the analysis (run smtpscope "
             "analyse as its owner)\n";
    return false;
  }
  if (stale.value()) {
    notes << "smtpscope: note: " << *stale.value() << "; analysing every stored session again\n";
    auto done = analysis::analyse_stored(db, rules, std::nullopt, progress_bar("analysing"));
    if (!done) return done.status();
  }
  auto done = analysis::analyse_pending(db, rules, true, progress_bar("analysing new sessions"));
  if (!done) return done.status();
  return true;
}

Population population_in_memory(std::vector<AnalysedSession> sessions,
                                const PopulationFilter& filter) {
  Population out;
  std::set<std::string> local;
  for (const auto& a : sessions) {
    if (analysis::is_local_reinjection(*a.session)) local.insert(a.session->client_addr);
  }
  std::erase_if(sessions, [&](const AnalysedSession& a) {
    return left_out(local, a.session->client_addr, filter);
  });
  for (const auto& client : local) out.local_left_out += left_out(local, client, filter);
  for (const auto& a : sessions) {
    analysis::Observation o{a.fingerprint.id, {}, {}};
    for (auto q : a.facts.quirks) o.quirks.emplace_back(analysis::to_string(q));
    for (const auto* p : a.patterns) o.patterns.push_back(p->name);
    out.sessions += 1;
    for (const auto& p : std::set<std::string>(o.patterns.begin(), o.patterns.end())) {
      out.sessions_with_pattern[p] += 1;
    }
    for (const auto& q : std::set<std::string>(o.quirks.begin(), o.quirks.end())) {
      out.sessions_with_quirk[q] += 1;
    }
    out.observations.push_back(std::move(o));
  }
  out.clients = by_client(std::move(sessions));
  return out;
}

Result<Population> read_population(sql::Connection& db, const analysis::PatternSet& patterns,
                                   const PopulationFilter& filter) {
  std::map<std::string, const analysis::Pattern*> known;
  std::map<std::string, double> weights;
  for (const auto& p : patterns.patterns) {
    known[p.name] = &p;
    weights[p.name] = p.weight;
  }
  auto features = read_fingerprints(db);
  if (!features) return features.status();
  auto local = local_clients(db);
  if (!local) return local.status();
  // report --client: that client's rows, scored against the others' shapes.
  const bool one_client = filter.only_asked && !filter.asked_client.empty();
  // In one order on both backends: a client's quirks, and its patterns and
  // fingerprints of equal counts, are listed in the order read. SQLite reads
  // client_day_shapes_by_day in this order (its entries end with the key),
  // so it sorts nothing for the whole population.
  const sql::Dialect d = db.dialect();
  auto q = db.prepare("SELECT * FROM (" +
                      shapes_query(filter, one_client ? " AND client_addr = ?4" : "") +
                      ") AS shape_rows ORDER BY day, " + sql::bytewise(d, "client_addr") + ", " +
                      sql::bytewise(d, "host") + ", " + sql::bytewise(d, "fingerprint") + ", " +
                      sql::bytewise(d, "patterns") + ", " + sql::bytewise(d, "helo_quirks"));
  if (!q) return q.status();
  bind_window(q.value(), filter);
  if (one_client) q.value().bind(4, filter.asked_client);
  Population out;
  std::unordered_map<std::string, std::size_t> index;
  std::set<std::string> skipped;
  std::vector<analysis::ClientSessions> scored;
  for (;;) {
    auto row = q.value().step();
    if (!row) return row.status();
    if (!row.value()) break;
    auto& r = q.value();
    Shape s{r.column_text(2), words(r.column_text(3)), words(r.column_text(4)), r.column_int(1),
            r.column_int(5), r.column_text(9)};
    if (s.sessions <= 0) continue;
    std::erase_if(s.patterns, [&](const std::string& name) { return !known.contains(name); });
    const std::string addr = r.column_text(0);
    if (left_out(local.value(), addr, filter)) {
      skipped.insert(addr);
      continue;
    }
    auto [at, added] = index.try_emplace(addr, out.clients.size());
    if (added) {
      out.clients.push_back(ClientSummary{});
      out.clients.back().client_addr = addr;
      scored.push_back({addr, {}});
    }
    add_shape(out.clients[at->second], s, r.column_int(6), r.column_int(7), r.column_int(8), known);
    out.sessions += s.sessions;
    for (const auto& p : s.patterns) out.sessions_with_pattern[p] += s.sessions;
    for (const auto& quirk : s.quirks) out.sessions_with_quirk[quirk] += s.sessions;
    out.observations.push_back({s.fingerprint, s.quirks, s.patterns, static_cast<int>(s.sessions)});
    scored[at->second].sessions.push_back(
        {s.fingerprint, s.quirks, s.patterns, static_cast<int>(s.sessions), s.day * day_us});
  }
  for (auto& input : scored) {
    std::stable_sort(input.sessions.begin(), input.sessions.end(),
                     [](const auto& a, const auto& b) { return a.connect_us < b.connect_us; });
  }
  for (auto& c : out.clients) {
    std::stable_sort(c.pattern_counts.begin(), c.pattern_counts.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::stable_sort(c.fingerprints.begin(), c.fingerprints.end(),
                     [](const auto& a, const auto& b) { return a.sessions > b.sessions; });
    std::stable_sort(c.hosts.begin(), c.hosts.end(),
                     [](const auto& a, const auto& b) { return a.sessions > b.sessions; });
    for (auto& f : c.fingerprints) {
      if (auto found = features.value().find(f.id); found != features.value().end()) {
        f.features = found->second;
      }
    }
  }
  out.local_left_out = skipped.size();
  if (Status timed = add_timing(db, out.clients); !timed) return timed;
  if (!one_client) {
    rank_clients(out.clients, scored, weights);
    return out;
  }
  auto population = population_shapes(db, filter, known);
  if (!population) return population.status();
  auto anomalies = analysis::score_clients_against(scored, population.value(), weights);
  for (auto& c : out.clients) c.anomaly = std::move(anomalies[c.client_addr]);
  return out;
}

Result<std::vector<TimedCount>> read_pattern_minutes(sql::Connection& db,
                                                     const PopulationFilter& filter) {
  const std::string host = filter.host ? " AND host = ?2" : "";
  auto span = db.prepare("SELECT min(connect_us), max(connect_us) FROM session_analysis"
                         " WHERE connect_us >= ?1" + host);
  if (!span) return span.status();
  span.value().bind(1, filter.since_us.value_or(INT64_MIN));
  if (filter.host) span.value().bind(2, *filter.host);
  auto bounds = span.value().step();
  if (!bounds) return bounds.status();
  if (span.value().column_is_null(0)) return std::vector<TimedCount>{};
  const std::int64_t first = span.value().column_int(0), last = span.value().column_int(1);
  // Over three days the chart counts per day: the per-day counts hold them
  // (and session_analysis the first, partial day of a window).
  const bool by_day = last - first > 3 * day_us;
  const std::string sql =
      by_day ? "SELECT day * 86400000000, patterns, sessions FROM (" + shapes_query(filter) + ") AS shapes"
             : "SELECT min(connect_us), coalesce(pattern, ''), count(*) FROM session_analysis"
               " WHERE connect_us >= ?2" + std::string(filter.host ? " AND host = ?3" : "") +
                   " GROUP BY connect_us / 60000000, 2";
  auto q = db.prepare(sql);
  if (!q) return q.status();
  if (by_day) {
    bind_window(q.value(), filter);
  } else {
    q.value().bind(2, filter.since_us.value_or(INT64_MIN));
    if (filter.host) q.value().bind(3, *filter.host);
  }
  // The true first and last session (count 0) give the chart its span.
  std::vector<TimedCount> out{{first, "", 0}, {last, "", 0}};
  for (;;) {
    auto row = q.value().step();
    if (!row) return row.status();
    if (!row.value()) return out;
    const std::string named = q.value().column_text(1);
    out.push_back({std::max(first, q.value().column_int(0)), named.substr(0, named.find(' ')),
                   q.value().column_int(2)});
  }
}

Result<Population> read_population(sqlite::Database& db, const analysis::PatternSet& patterns,
                                   const PopulationFilter& filter) {
  return read_population(*sql::over_sqlite(db), patterns, filter);
}

}  // namespace smtpscope::cli
