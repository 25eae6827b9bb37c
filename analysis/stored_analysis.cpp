#include "stored_analysis.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "clock.h"
#include "client_timing.h"
#include "fingerprint.h"
#include "local_client.h"
#include "session_facts.h"
#include "session_reader.h"

namespace smtpscope::analysis {
namespace {

// FNV-1a, 64 bits: stable across builds and machines (std::hash is not).
std::string digest_of(const std::string& text) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return fmt::format("{:016x}", h);
}

std::string joined(const std::vector<std::string>& words) {
  return fmt::format("{}", fmt::join(words, " "));
}

Result<std::optional<std::string>> state(sqlite::Database& db, const std::string& key) {
  auto q = db.prepare("SELECT value FROM analysis_state WHERE key = ?1");
  if (!q) return q.status();
  q.value().bind(1, key);
  auto row = q.value().step();
  if (!row) return row.status();
  if (!row.value()) return std::optional<std::string>();
  return std::optional<std::string>(q.value().column_text(0));
}

Status set_state(sqlite::Database& db, const std::string& key, const std::string& value) {
  auto q = db.prepare(
      "INSERT INTO analysis_state (key, value) VALUES (?1, ?2)"
      " ON CONFLICT (key) DO UPDATE SET value = excluded.value");
  if (!q) return q.status();
  return q.value().bind(1, key).bind(2, value).run();
}

Status clear_state(sqlite::Database& db, const std::string& key) {
  auto q = db.prepare("DELETE FROM analysis_state WHERE key = ?1");
  if (!q) return q.status();
  return q.value().bind(1, key).run();
}

Status record_rules(sqlite::Database& db, const AnalysisRules& rules) {
  if (Status s = set_state(db, "patterns_digest", rules.digest); !s) return s;
  return set_state(db, "analysis_version", std::to_string(analysis_version));
}

// The statements one session's analysis is written with.
struct Writer {
  sqlite::Statement remove;
  sqlite::Statement insert;
  sqlite::Statement fingerprint;
  sqlite::Statement earlier_connects;
  sqlite::Statement client_timing;
  // Within one write transaction: each client's timing so far (sessions
  // come mostly in time order) and the fingerprints already written.
  std::unordered_map<std::string, TimingSums> timing;
  std::unordered_map<std::string, std::string> fingerprints;
};

// The client's timing up to and including this session (from its 200
// sessions before it at most); a later session of a client seen in this
// transaction adds to what is known of it.
Result<ClientTiming> timing_until(Writer& w, const SessionRecord& session) {
  if (auto known = w.timing.find(session.client_addr);
      known != w.timing.end() && known->second.last_connect_us <= session.connect_us) {
    known->second.add(session.connect_us);
    return known->second.timing();
  }
  w.earlier_connects.bind(1, session.client_addr).bind(2, session.connect_us);
  std::vector<std::int64_t> earlier;
  for (;;) {
    auto row = w.earlier_connects.step();
    if (!row) return row.status();
    if (!row.value()) break;
    earlier.push_back(w.earlier_connects.column_int(0));
  }
  w.earlier_connects.reset();
  TimingSums sums;
  for (auto at = earlier.rbegin(); at != earlier.rend(); ++at) sums.add(*at);
  sums.add(session.connect_us);
  w.timing[session.client_addr] = sums;
  return sums.timing();
}

Result<Writer> prepare_writer(sqlite::Database& db) {
  auto all = db.prepare_all({
      "DELETE FROM session_analysis WHERE session_id = ?1",
      "INSERT INTO session_analysis (session_id, client_addr, host, connect_us, stages, pattern,"
      " patterns, fingerprint, helo_quirks, transactions, aborted, delivered, local,"
      " analysed_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
      "INSERT INTO fingerprints (id, features) VALUES (?1, ?2)"
      " ON CONFLICT (id) DO UPDATE SET features = excluded.features"
      " WHERE features != excluded.features",
      // The client's timing before this session: its last sessions' starts.
      "SELECT connect_us FROM session_analysis WHERE client_addr = ?1 AND connect_us < ?2"
      " ORDER BY connect_us DESC LIMIT 200",
      "INSERT INTO client_timing (client_addr, last_connect_us, sessions, mean_interval_s,"
      " regular_every_s, burst) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (client_addr) DO"
      " UPDATE SET last_connect_us = excluded.last_connect_us, sessions = excluded.sessions,"
      " mean_interval_s = excluded.mean_interval_s, regular_every_s = excluded.regular_every_s,"
      " burst = excluded.burst WHERE excluded.last_connect_us >= client_timing.last_connect_us"});
  if (!all) return all.status();
  auto& s = all.value();
  return Writer{std::move(s[0]), std::move(s[1]), std::move(s[2]), std::move(s[3]),
                std::move(s[4]), {}, {}};
}

// The client's timing as of this session, kept if it is its newest.
Status store_timing(Writer& w, const SessionRecord& session, const ClientTiming& t) {
  return w.client_timing.bind(1, session.client_addr)
      .bind(2, session.connect_us)
      .bind(3, t.sessions)
      .bind(4, t.mean_interval_s)
      .bind(5, t.regular_every_s)
      .bind(6, std::int64_t{t.burst})
      .run();
}

Status write_analysis(Writer& w, const SessionRecord& session, const AnalysisRules& rules,
                      std::int64_t analysed_us) {
  const SessionFacts facts = facts_of(session);
  auto timing = timing_until(w, session);
  if (!timing) return timing.status();
  const auto matched = match_all(rules.patterns, facts, timing.value());
  const Fingerprint fingerprint = fingerprint_of(session, facts);
  std::vector<std::string> names, quirks;
  for (const auto* p : matched) names.push_back(p->name);
  for (auto q : facts.quirks) quirks.emplace_back(to_string(q));
  if (Status s = w.remove.bind(1, session.id).run(); !s) return s;
  Status inserted =
      w.insert.bind(1, session.id)
          .bind(2, session.client_addr)
          .bind(3, session.host)
          .bind(4, session.connect_us)
          .bind(5, facts.stages)
          .bind(6, names.empty() ? std::optional<std::string>() : std::optional(names.front()))
          .bind(7, joined(names))
          .bind(8, fingerprint.id)
          .bind(9, joined(quirks))
          .bind(10, std::int64_t{facts.transactions})
          .bind(11, std::int64_t{facts.aborted})
          .bind(12, std::int64_t{facts.delivered})
          .bind(13, std::int64_t{is_local_reinjection(session)})
          .bind(14, analysed_us)
          .run();
  if (!inserted) return inserted;
  if (Status s = store_timing(w, session, timing.value()); !s) return s;
  std::string features = fingerprint.readable();
  auto& written = w.fingerprints[fingerprint.id];
  if (written == features) return Status::ok();
  written = features;
  return w.fingerprint.bind(1, fingerprint.id).bind(2, features).run();
}

// Analyses the given sessions in one write transaction; `also` runs in it
// before the commit (to move a watermark or cursor with the work).
Result<std::int64_t> analyse_ids(sqlite::Database& db, const AnalysisRules& rules,
                                 std::vector<std::int64_t> ids, bool open_too,
                                 const std::function<Status()>& also) {
  SessionFilter filter;
  filter.limit = ids.size();
  filter.ids = std::move(ids);
  auto writer = prepare_writer(db);
  if (!writer) return writer.status();
  auto marks = db.prepare_all({"INSERT OR IGNORE INTO analysis_open VALUES (?1)",
                               "DELETE FROM analysis_open WHERE session_id = ?1"});
  if (!marks) return marks.status();
  auto& still_open = marks.value()[0];
  auto& no_longer_pending = marks.value()[1];
  if (Status begun = db.exec("BEGIN IMMEDIATE"); !begun) return begun;
  const std::int64_t analysed_us = SystemClock().now_us();
  std::int64_t analysed = 0;
  Status done = for_each_session(db, filter, [&](SessionRecord session) {
    if (!open_too && !session.close_us) return still_open.bind(1, session.id).run();
    analysed += 1;
    if (Status s = no_longer_pending.bind(1, session.id).run(); !s) return s;
    return write_analysis(writer.value(), session, rules, analysed_us);
  });
  if (done) done = also();
  if (!done) {
    (void)db.exec("ROLLBACK");
    return done;
  }
  if (Status committed = db.exec("COMMIT"); !committed) return committed;
  return analysed;
}

Result<std::vector<std::int64_t>> column_of_ints(sqlite::Statement& q) {
  std::vector<std::int64_t> out;
  for (;;) {
    auto row = q.step();
    if (!row) return row.status();
    if (!row.value()) break;
    out.push_back(q.column_int(0));
  }
  q.reset();
  return out;
}

// The highest id in `table` (event_rows or sessions; never text from outside).
Result<std::int64_t> newest_id(sqlite::Database& db, std::string_view table) {
  auto q = db.prepare(fmt::format("SELECT coalesce(max(id), 0) FROM {}", table));
  if (!q) return q.status();
  auto top = column_of_ints(q.value());
  if (!top) return top.status();
  return top.value().front();
}

Result<std::int64_t> newest_event(sqlite::Database& db) { return newest_id(db, "event_rows"); }
Result<std::int64_t> newest_session(sqlite::Database& db) { return newest_id(db, "sessions"); }

Result<std::int64_t> watermark_of(sqlite::Database& db, const std::string& key) {
  auto value = state(db, key);
  if (!value) return value.status();
  return value.value() ? std::stoll(*value.value()) : std::int64_t{0};
}

Result<std::int64_t> count_sessions(sqlite::Database& db, std::optional<std::int64_t> since_us,
                                    std::int64_t after_id) {
  auto q = db.prepare("SELECT count(*) FROM sessions WHERE id > ?1 AND connect_us >= ?2");
  if (!q) return q.status();
  q.value().bind(1, after_id).bind(2, since_us.value_or(INT64_MIN));
  auto row = q.value().step();
  if (!row) return row.status();
  return q.value().column_int(0);
}

std::string cursor_key(const AnalysisRules& rules, std::optional<std::int64_t> since_us) {
  return fmt::format("{}:{}:{}", analysis_version, rules.digest,
                     since_us ? std::to_string(*since_us) : "all");
}

// Where an interrupted analyse_stored with the same rules and window stopped.
Result<std::int64_t> resume_point(sqlite::Database& db, const std::string& key) {
  auto saved = state(db, "analyse_cursor");
  if (!saved) return saved.status();
  if (!saved.value() || saved.value()->rfind(key + ":", 0) != 0) return std::int64_t{0};
  return std::stoll(saved.value()->substr(key.size() + 1));
}

}  // namespace

Result<std::unique_ptr<sqlite::Database>> open_for_analysis(const std::string& path,
                                                           int busy_timeout_ms) {
  auto db = sqlite::Database::open(path, false, busy_timeout_ms);
  if (!db) return db.status();
  if (Status tuned = db.value()->exec("PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768");
      !tuned) {
    return tuned.context("tune the analysis connection to " + path);
  }
  return std::move(db).value();
}

Result<AnalysisRules> load_rules(const std::string& file) {
  AnalysisRules rules;
  std::string text = builtin_patterns_yaml();
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream read;
    read << in.rdbuf();
    text = read.str();
  }
  auto patterns = file.empty() ? parse_patterns(text, "built-in patterns") : load_patterns(file);
  if (!patterns) return patterns.status();
  rules.patterns = std::move(patterns).value();
  rules.digest = digest_of(text);
  return rules;
}

Result<std::int64_t> analyse_pending(sqlite::Database& db, const AnalysisRules& rules,
                                     bool open_too, const AnalyseProgress& progress) {
  constexpr std::size_t batch = 5000;
  auto from = watermark_of(db, "event_watermark");
  auto sessions_from = from ? watermark_of(db, "session_watermark") : from;
  auto to = sessions_from ? newest_event(db) : sessions_from;
  auto sessions_to = to ? newest_session(db) : to;
  if (!sessions_to) return sessions_to.status();
  const bool nothing_new = to.value() <= from.value() && sessions_to.value() <= sessions_from.value();
  if (nothing_new && !open_too) return std::int64_t{0};
  auto touched = db.prepare(
      "SELECT session_id FROM event_rows WHERE id > ?1 AND id <= ?2"
      " UNION SELECT id FROM sessions WHERE id > ?3 AND id <= ?4"
      " UNION SELECT session_id FROM analysis_open WHERE ?5 ORDER BY 1");
  if (!touched) return touched.status();
  touched.value().bind(1, from.value()).bind(2, to.value()).bind(3, sessions_from.value())
      .bind(4, sessions_to.value()).bind(5, std::int64_t{open_too});
  auto ids = column_of_ints(touched.value());
  if (!ids) return ids.status();
  const auto& all = ids.value();
  if (all.empty()) return std::int64_t{0};
  std::int64_t analysed = 0;
  for (std::size_t start = 0; start < all.size() || start == 0; start += batch) {
    const std::size_t end = std::min(all.size(), start + batch);
    const bool last = end == all.size();
    auto done = analyse_ids(
        db, rules, {all.begin() + start, all.begin() + end}, open_too, [&]() -> Status {
          if (!last) return Status::ok();
          if (Status s = set_state(db, "event_watermark", std::to_string(to.value())); !s) return s;
          if (Status s = set_state(db, "session_watermark", std::to_string(sessions_to.value()));
              !s) {
            return s;
          }
          auto digest = state(db, "patterns_digest");
          if (!digest) return digest.status();
          return digest.value() ? Status::ok() : record_rules(db, rules);
        });
    if (!done) return done.status().context("analysing sessions");
    analysed += done.value();
    if (progress) progress(static_cast<std::int64_t>(end), static_cast<std::int64_t>(all.size()));
    if (last) break;
  }
  return analysed;
}

Result<bool> analysis_behind(sqlite::Database& db) {
  auto events = newest_event(db);
  auto seen_events = events ? watermark_of(db, "event_watermark") : events;
  auto sessions = seen_events ? newest_session(db) : seen_events;
  auto seen_sessions = sessions ? watermark_of(db, "session_watermark") : sessions;
  if (!seen_sessions) return seen_sessions.status();
  return events.value() > seen_events.value() || sessions.value() > seen_sessions.value();
}

Result<std::optional<std::string>> stale_reason(sqlite::Database& db, const AnalysisRules& rules) {
  auto digest = state(db, "patterns_digest");
  if (!digest) return digest.status();
  auto version = state(db, "analysis_version");
  if (!version) return version.status();
  if (!digest.value()) return std::optional<std::string>();  // nothing analysed yet
  if (*digest.value() != rules.digest) {
    return std::optional<std::string>("the stored analysis was made with other patterns");
  }
  if (version.value() && *version.value() != std::to_string(analysis_version)) {
    return std::optional<std::string>(fmt::format(
        "the stored analysis was made by another smtpscope (analysis version {}, this is {})",
        *version.value(), analysis_version));
  }
  return std::optional<std::string>();
}

Result<std::int64_t> analyse_stored(sqlite::Database& db, const AnalysisRules& rules,
                                    std::optional<std::int64_t> since_us,
                                    const AnalyseProgress& progress) {
  const std::string key = cursor_key(rules, since_us);
  auto seen = newest_event(db);
  if (!seen) return seen.status();
  auto seen_session = newest_session(db);
  if (!seen_session) return seen_session.status();
  auto resumed = resume_point(db, key);
  if (!resumed) return resumed.status();
  std::int64_t after = resumed.value();
  auto before = count_sessions(db, since_us, 0);
  auto left = before ? count_sessions(db, since_us, after) : before;
  if (!left) return left.status();
  const std::int64_t total = before.value();
  std::int64_t done = total - left.value();
  auto next = db.prepare(
      "SELECT id FROM sessions WHERE id > ?1 AND connect_us >= ?2 ORDER BY id LIMIT 5000");
  if (!next) return next.status();
  std::int64_t analysed = 0;
  for (;;) {
    next.value().bind(1, after).bind(2, since_us.value_or(INT64_MIN));
    auto ids = column_of_ints(next.value());
    if (!ids) return ids.status();
    if (ids.value().empty()) break;
    const std::int64_t last_id = ids.value().back();
    const std::size_t n = ids.value().size();
    auto written = analyse_ids(db, rules, std::move(ids).value(), true, [&] {
      return set_state(db, "analyse_cursor", fmt::format("{}:{}", key, last_id));
    });
    if (!written) return written.status().context("analysing stored sessions");
    analysed += written.value();
    after = last_id;
    done += static_cast<std::int64_t>(n);
    if (progress) progress(done, total);
  }
  if (Status s = record_rules(db, rules); !s) return s;
  if (!since_us) {
    for (const auto& [watermark, seen_id] :
         {std::pair<std::string, std::int64_t>{"event_watermark", seen.value()},
          {"session_watermark", seen_session.value()}}) {
      auto from = watermark_of(db, watermark);
      if (!from) return from.status();
      if (seen_id <= from.value()) continue;
      if (Status s = set_state(db, watermark, std::to_string(seen_id)); !s) return s;
    }
  }
  if (Status s = clear_state(db, "analyse_cursor"); !s) return s;
  return analysed;
}

}  // namespace smtpscope::analysis
