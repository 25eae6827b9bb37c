#include "stored_analysis.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "clock.h"
#include "client_timing.h"
#include "state_table.h"
#include "fingerprint.h"
#include "local_client.h"
#include "session_facts.h"
#include "session_reader.h"
#include "timing_so_far.h"

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
  return read_state(db, StateTable::analysis, key);
}

Status set_state(sqlite::Database& db, const std::string& key, const std::string& value) {
  return write_state(db, StateTable::analysis, key, value);
}

Status record_rules(sqlite::Database& db, const AnalysisRules& rules) {
  if (Status s = set_state(db, "patterns_digest", rules.digest); !s) return s;
  return set_state(db, "analysis_version", std::to_string(analysis_version));
}

// One session as a pass concluded it, to be written.
struct Concluded {
  std::int64_t session_id = 0;
  // Not analysed now: still open, or (in order) behind a session of its
  // client that waits.
  bool waits = false;
  std::string client_addr, host;
  std::int64_t connect_us = 0;
  std::string stages;
  std::vector<std::string> patterns;
  std::string fingerprint, features;
  std::string helo_quirks;
  std::int64_t transactions = 0, aborted = 0, delivered = 0, local = 0;
  ClientTiming timing;
};

Concluded conclude(const SessionRecord& session, const AnalysisRules& rules,
                   const ClientTiming& timing) {
  const SessionFacts facts = facts_of(session);
  const Fingerprint fingerprint = fingerprint_of(session, facts);
  Concluded c;
  c.session_id = session.id;
  c.client_addr = session.client_addr;
  c.host = session.host;
  c.connect_us = session.connect_us;
  c.stages = facts.stages;
  for (const auto* p : match_all(rules.patterns, facts, timing)) c.patterns.push_back(p->name);
  c.fingerprint = fingerprint.id;
  c.features = fingerprint.readable();
  std::vector<std::string> quirks;
  for (auto q : facts.quirks) quirks.emplace_back(to_string(q));
  c.helo_quirks = joined(quirks);
  c.transactions = facts.transactions;
  c.aborted = facts.aborted;
  c.delivered = facts.delivered;
  c.local = is_local_reinjection(session);
  c.timing = timing;
  return c;
}

// (connect_us, id): the order a pass meets sessions in.
using Place = std::pair<std::int64_t, std::int64_t>;

// The clients with a session that waits outside the pass's ids (in
// analysis_open: open, or left for later), each with its earliest.
Result<std::unordered_map<std::string, Place>> waiting_outside(sqlite::Database& db,
                                                               std::vector<std::int64_t> ids) {
  std::sort(ids.begin(), ids.end());
  auto q = db.prepare(
      "SELECT s.client_addr, s.connect_us, s.id FROM analysis_open o"
      " JOIN sessions s ON s.id = o.session_id");
  if (!q) return q.status();
  std::unordered_map<std::string, Place> out;
  for (;;) {
    auto row = q.value().step();
    if (!row) return row.status();
    if (!row.value()) break;
    const Place place{q.value().column_int(1), q.value().column_int(2)};
    if (std::binary_search(ids.begin(), ids.end(), place.second)) continue;
    auto [at, added] = out.try_emplace(q.value().column_text(0), place);
    if (!added) at->second = std::min(at->second, place);
  }
  return out;
}

// Reads and concludes the given sessions, in (connect_us, id) order.
Result<std::vector<Concluded>> conclude_all(sqlite::Database& db, const AnalysisRules& rules,
                                            const std::vector<std::int64_t>& ids,
                                            const PendingPass& pass) {
  SessionFilter filter;
  filter.limit = ids.size();
  filter.ids = ids;
  auto timing = TimingSoFar::prepare(db);
  if (!timing) return timing.status();
  std::unordered_map<std::string, Place> waiting;
  if (pass.in_order) {
    auto outside = waiting_outside(db, ids);
    if (!outside) return outside.status();
    waiting = std::move(outside).value();
  }
  std::vector<Concluded> out;
  out.reserve(ids.size());
  Status read = for_each_session(db, filter, [&](SessionRecord session) -> Status {
    const Place place{session.connect_us, session.id};
    const auto behind = waiting.find(session.client_addr);
    if ((!pass.open_too && !session.close_us) ||
        (behind != waiting.end() && behind->second < place)) {
      Concluded waits;
      waits.session_id = session.id;
      waits.waits = true;
      out.push_back(std::move(waits));
      if (pass.in_order) {
        auto [at, added] = waiting.try_emplace(session.client_addr, place);
        if (!added) at->second = std::min(at->second, place);
      }
      return Status::ok();
    }
    auto known = timing.value().until(session);
    if (!known) return known.status();
    out.push_back(conclude(session, rules, known.value()));
    return Status::ok();
  });
  if (!read) return read;
  return out;
}

// The statements a pass's conclusions are written with.
struct Writer {
  sqlite::Statement remove;
  sqlite::Statement insert;
  sqlite::Statement fingerprint;
  sqlite::Statement client_timing;
  sqlite::Statement still_open;
  sqlite::Statement no_longer_pending;
  std::unordered_map<std::string, std::string> fingerprints;  // written in this pass
  // Of the pass's sessions, those with a row to replace and those waiting:
  // the others need no DELETE (two statements less per session).
  std::unordered_set<std::int64_t> analysed_before, waiting;
};

// Ids the program chose (never text from outside), written into the SQL.
std::string id_list(const std::vector<Concluded>& concluded) {
  std::string out = "NULL";
  for (const Concluded& c : concluded) out += "," + std::to_string(c.session_id);
  return out;
}

Result<std::unordered_set<std::int64_t>> ids_in(sqlite::Database& db, const std::string& sql) {
  auto q = db.prepare(sql);
  if (!q) return q.status();
  std::unordered_set<std::int64_t> out;
  for (;;) {
    auto row = q.value().step();
    if (!row) return row.status();
    if (!row.value()) return out;
    out.insert(q.value().column_int(0));
  }
}

// Which of the pass's sessions are analysed or waiting now (under the write lock).
Status note_rows(sqlite::Database& db, Writer& w, const std::vector<Concluded>& concluded) {
  const std::string ids = id_list(concluded);
  auto analysed = ids_in(db, "SELECT session_id FROM session_analysis WHERE session_id IN (" +
                                 ids + ")");
  if (!analysed) return analysed.status();
  auto waiting =
      ids_in(db, "SELECT session_id FROM analysis_open WHERE session_id IN (" + ids + ")");
  if (!waiting) return waiting.status();
  w.analysed_before = std::move(analysed).value();
  w.waiting = std::move(waiting).value();
  return Status::ok();
}

Result<Writer> prepare_writer(sqlite::Database& db) {
  auto all = db.prepare_all({
      "DELETE FROM session_analysis WHERE session_id = ?1",
      // A session pruned since it was read is not written back.
      "INSERT INTO session_analysis (session_id, client_addr, host, connect_us, stages, pattern,"
      " patterns, fingerprint, helo_quirks, transactions, aborted, delivered, local,"
      " analysed_us) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14"
      " WHERE EXISTS (SELECT 1 FROM sessions WHERE id = ?1)",
      // Of its sessions' features (the later ones, body, end and mailer,
      // may differ), the least in text order: the same whichever order the
      // sessions were analysed in.
      "INSERT INTO fingerprints (id, features) VALUES (?1, ?2)"
      " ON CONFLICT (id) DO UPDATE SET features = excluded.features"
      " WHERE excluded.features < features",
      "INSERT INTO client_timing (client_addr, last_connect_us, sessions, mean_interval_s,"
      " regular_every_s, burst) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (client_addr) DO"
      " UPDATE SET last_connect_us = excluded.last_connect_us, sessions = excluded.sessions,"
      " mean_interval_s = excluded.mean_interval_s, regular_every_s = excluded.regular_every_s,"
      " burst = excluded.burst WHERE excluded.last_connect_us >= client_timing.last_connect_us",
      "INSERT OR IGNORE INTO analysis_open VALUES (?1)",
      "DELETE FROM analysis_open WHERE session_id = ?1"});
  if (!all) return all.status();
  auto& s = all.value();
  return Writer{std::move(s[0]), std::move(s[1]), std::move(s[2]),
                std::move(s[3]), std::move(s[4]), std::move(s[5]), {}, {}, {}};
}

// The client's timing as of this session, kept if it is its newest.
Status store_timing(Writer& w, const Concluded& c) {
  return w.client_timing.bind(1, c.client_addr)
      .bind(2, c.connect_us)
      .bind(3, c.timing.sessions)
      .bind(4, c.timing.mean_interval_s)
      .bind(5, c.timing.regular_every_s)
      .bind(6, std::int64_t{c.timing.burst})
      .run();
}

Status write_one(Writer& w, const Concluded& c, std::int64_t analysed_us) {
  const bool waiting = w.waiting.contains(c.session_id);
  if (c.waits) return waiting ? Status::ok() : w.still_open.bind(1, c.session_id).run();
  if (waiting) {
    if (Status s = w.no_longer_pending.bind(1, c.session_id).run(); !s) return s;
  }
  if (w.analysed_before.contains(c.session_id)) {
    if (Status s = w.remove.bind(1, c.session_id).run(); !s) return s;
  }
  Status inserted =
      w.insert.bind(1, c.session_id)
          .bind(2, c.client_addr)
          .bind(3, c.host)
          .bind(4, c.connect_us)
          .bind(5, c.stages)
          .bind(6, c.patterns.empty() ? std::optional<std::string>()
                                      : std::optional(c.patterns.front()))
          .bind(7, joined(c.patterns))
          .bind(8, c.fingerprint)
          .bind(9, c.helo_quirks)
          .bind(10, c.transactions)
          .bind(11, c.aborted)
          .bind(12, c.delivered)
          .bind(13, c.local)
          .bind(14, analysed_us)
          .run();
  if (!inserted) return inserted;
  if (Status s = store_timing(w, c); !s) return s;
  auto& written = w.fingerprints[c.fingerprint];
  if (!written.empty() && written <= c.features) return Status::ok();
  written = c.features;
  return w.fingerprint.bind(1, c.fingerprint).bind(2, c.features).run();
}

// Counts every written pass: conclusions read before the write lock are
// still right when it has not moved since.
constexpr const char* generation_key = "analysis_generation";

Status next_generation(sqlite::Database& db) {
  auto now = state(db, generation_key);
  if (!now) return now.status();
  const std::int64_t next = now.value() ? std::stoll(*now.value()) + 1 : 1;
  return set_state(db, generation_key, std::to_string(next));
}

// Read before the write lock (PendingPass::read_first): the conclusions and
// the generation they were read at.
struct EarlyRead {
  std::vector<Concluded> concluded;
  std::optional<std::string> generation;
};

Result<EarlyRead> read_early(sqlite::Database& db, const AnalysisRules& rules,
                             const std::vector<std::int64_t>& ids, const PendingPass& pass) {
  if (Status begun = db.exec("BEGIN"); !begun) return begun.context("begin reading");
  auto generation = state(db, generation_key);
  auto concluded = generation ? conclude_all(db, rules, ids, pass)
                              : Result<std::vector<Concluded>>(generation.status());
  (void)db.exec("COMMIT");
  if (!concluded) return concluded.status();
  return EarlyRead{std::move(concluded).value(), generation.value()};
}

// Analyses the given sessions in one write transaction; `also` runs in it
// before the commit (to move a watermark or cursor with the work).
Result<std::int64_t> analyse_ids(sqlite::Database& db, const AnalysisRules& rules,
                                 const std::vector<std::int64_t>& ids, const PendingPass& pass,
                                 const std::function<Status()>& also) {
  auto writer = prepare_writer(db);
  if (!writer) return writer.status();
  std::optional<EarlyRead> early;
  if (pass.read_first) {
    auto read = read_early(db, rules, ids, pass);
    if (!read) return read.status();
    early = std::move(read).value();
  }
  std::unique_lock<std::mutex> writing;
  if (pass.write_lock) writing = std::unique_lock(*pass.write_lock);
  if (Status begun = db.exec("BEGIN IMMEDIATE"); !begun) return begun;
  auto transaction = [&]() -> Result<std::int64_t> {
    if (early) {
      auto generation = state(db, generation_key);
      if (!generation) return generation.status();
      if (generation.value() != early->generation) early.reset();  // another analysis wrote
    }
    if (!early) {
      auto concluded = conclude_all(db, rules, ids, pass);
      if (!concluded) return concluded.status();
      early = EarlyRead{std::move(concluded).value(), {}};
    }
    const std::int64_t analysed_us = SystemClock().now_us();
    std::int64_t analysed = 0;
    if (Status s = note_rows(db, writer.value(), early->concluded); !s) return s;
    for (const Concluded& c : early->concluded) {
      if (Status s = write_one(writer.value(), c, analysed_us); !s) return s;
      analysed += c.waits ? 0 : 1;
    }
    if (Status s = next_generation(db); !s) return s;
    if (Status s = also(); !s) return s;
    return analysed;
  };
  auto done = transaction();
  if (!done) {
    (void)db.exec("ROLLBACK");
    return done;
  }
  if (Status committed = db.exec("COMMIT"); !committed) return committed;
  return done;
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

// A session in analysis_open that has ended: an in-order pass left it for later.
Result<bool> ended_but_waiting(sqlite::Database& db) {
  auto q = db.prepare(
      "SELECT EXISTS (SELECT 1 FROM analysis_open o JOIN sessions s ON s.id = o.session_id"
      " WHERE s.close_us IS NOT NULL)");
  if (!q) return q.status();
  auto found = column_of_ints(q.value());
  if (!found) return found.status();
  return found.value().front() != 0;
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

Status tune_for_analysis(sqlite::Database& db) {
  Status tuned = db.exec(
      "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -32768; PRAGMA wal_autocheckpoint = 10000");
  return tuned ? tuned : tuned.context("tune the analysis connection to " + db.path());
}

Result<std::unique_ptr<sqlite::Database>> open_for_analysis(const std::string& path,
                                                           int busy_timeout_ms) {
  auto db = sqlite::Database::open(path, false, busy_timeout_ms);
  if (!db) return db.status();
  if (Status tuned = tune_for_analysis(*db.value()); !tuned) return tuned;
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
  PendingPass pass;
  pass.open_too = open_too;
  pass.progress = progress;
  return analyse_pending(db, rules, pass);
}

Result<std::int64_t> analyse_pending(sqlite::Database& db, const AnalysisRules& rules,
                                     const PendingPass& pass) {
  constexpr std::size_t batch = 5000;
  const bool open_too = pass.open_too;
  auto from = watermark_of(db, "event_watermark");
  auto sessions_from = from ? watermark_of(db, "session_watermark") : from;
  auto to = sessions_from ? newest_event(db) : sessions_from;
  auto sessions_to = to ? newest_session(db) : to;
  if (!sessions_to) return sessions_to.status();
  const bool nothing_new = to.value() <= from.value() && sessions_to.value() <= sessions_from.value();
  if (nothing_new && !open_too) {
    auto left = pass.in_order ? Result<bool>(false) : ended_but_waiting(db);
    if (!left || !left.value()) return left ? Result<std::int64_t>(0) : left.status();
  }
  // Besides what is new: sessions that wait in analysis_open, all of them
  // for a command that shows open sessions, else those that have ended (an
  // in-order pass left them behind an earlier open one).
  auto touched = db.prepare(
      "SELECT session_id FROM event_rows WHERE id > ?1 AND id <= ?2"
      " UNION SELECT id FROM sessions WHERE id > ?3 AND id <= ?4"
      " UNION SELECT o.session_id FROM analysis_open o JOIN sessions s ON s.id = o.session_id"
      " WHERE ?5 OR s.close_us IS NOT NULL ORDER BY 1");
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
        db, rules, {all.begin() + start, all.begin() + end}, pass, [&]() -> Status {
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
    if (pass.progress) {
      pass.progress(static_cast<std::int64_t>(end), static_cast<std::int64_t>(all.size()));
    }
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
  if (events.value() > seen_events.value() || sessions.value() > seen_sessions.value()) return true;
  return ended_but_waiting(db);
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
    PendingPass every;
    every.open_too = true;
    auto written = analyse_ids(db, rules, ids.value(), every, [&] {
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
  if (Status s = clear_state(db, StateTable::analysis, "analyse_cursor"); !s) return s;
  return analysed;
}

}  // namespace smtpscope::analysis
