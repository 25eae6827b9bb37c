#include "pg_forwarder.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <vector>

#include "clock.h"
#include "pg_copy_rows.h"
#include "state_table.h"

namespace smtpscope::pg {
namespace {

// A table as forwarded: the local SELECT (?1 the id offset, ?2 the origin's
// host, ?3 < the range <= ?4) and the columns it fills in PostgreSQL, in
// the same order. `replace_key`: rows replace their earlier copy (matched
// on that column); empty: rows are only ever appended. `shared_update`:
// the row may come from several origins at once (a client's timing, a
// fingerprint), so it is upserted in key order with this ON CONFLICT
// action: concurrent forwarders then wait for each other instead of
// colliding (a delete and insert would fail on the other's new row) or
// deadlocking.
struct ForwardedTable {
  const char* name;
  const char* columns;
  const char* select;
  const char* replace_key;
  const char* shared_update = "";
};

const ForwardedTable kAttributeSets{
    "attribute_sets", "id, attributes",
    "SELECT id + ?1, attributes FROM attribute_sets WHERE id > ?3 AND id <= ?4 ORDER BY id", ""};

const ForwardedTable kSessions{
    "sessions",
    "id, stream, client_addr, client_port, client_name, client_ptr, server_addr, server_port,"
    " connect_us, close_us, helo, helo_count, transactions, partial, protocol, sources,"
    " join_method, host",
    "SELECT id + ?1, stream, client_addr, client_port, client_name, client_ptr, server_addr,"
    " server_port, connect_us, close_us, helo, helo_count, transactions, partial, protocol,"
    " sources, join_method, coalesce(nullif(host, ''), ?2) FROM sessions WHERE id IN ("
    "SELECT session_id FROM event_rows WHERE id > ?3 AND id <= ?4) ORDER BY id",
    "id"};

const ForwardedTable kTransactions{
    "transactions",
    "id, session_id, seq, mail_from, started_us, ended_us, rcpt_accepted, rcpt_rejected,"
    " data_us, queue_id, body_bytes, outcome, message_bytes",
    "SELECT id + ?1, session_id + ?1, seq, mail_from, started_us, ended_us, rcpt_accepted,"
    " rcpt_rejected, data_us, queue_id, body_bytes, outcome, message_bytes FROM transactions"
    " WHERE session_id IN (SELECT session_id FROM event_rows WHERE id > ?3 AND id <= ?4)"
    " ORDER BY id",
    "id"};

const ForwardedTable kEventRows{
    "event_rows",
    "id, session_id, transaction_id, source, stage, time_us, argument, attributes, set_id,"
    " base_id",
    "SELECT id + ?1, session_id + ?1, transaction_id + ?1, source, stage, time_us, argument,"
    " attributes, set_id + ?1, base_id + ?1 FROM event_rows WHERE id > ?3 AND id <= ?4"
    " ORDER BY id",
    ""};

const ForwardedTable kDrops{
    "drops", "id, time_us, source, dropped",
    "SELECT id + ?1, time_us, source, dropped FROM drops WHERE id > ?3 AND id <= ?4 ORDER BY id",
    ""};

const ForwardedTable kRemoteEvents{
    "remote_events",
    "id, time_us, server_name, server_addr, server_port, kind, state, status, queue_id,"
    " recipient, dsn, probe, reason",
    "SELECT id + ?1, time_us, server_name, server_addr, server_port, kind, state, status,"
    " queue_id, recipient, dsn, probe, reason FROM remote_events WHERE id > ?3 AND id <= ?4"
    " ORDER BY id",
    ""};

const ForwardedTable kAnalysis{
    "session_analysis",
    "session_id, client_addr, host, connect_us, stages, pattern, patterns, fingerprint,"
    " helo_quirks, transactions, aborted, delivered, local, analysed_us",
    "SELECT session_id + ?1, client_addr, coalesce(nullif(host, ''), ?2), connect_us, stages,"
    " pattern, patterns, fingerprint, helo_quirks, transactions, aborted, delivered, local,"
    " analysed_us FROM session_analysis WHERE session_id IN (SELECT row_id FROM forward_queue"
    " WHERE kind = 'analysis' AND seq > ?3 AND seq <= ?4)",
    "session_id"};

const ForwardedTable kTiming{
    "client_timing",
    "client_addr, last_connect_us, sessions, mean_interval_s, regular_every_s, burst",
    "SELECT client_addr, last_connect_us, sessions, mean_interval_s, regular_every_s, burst"
    " FROM client_timing WHERE client_addr IN (SELECT key FROM forward_queue"
    " WHERE kind = 'timing' AND seq > ?3 AND seq <= ?4)",
    "client_addr",
    // The newest timing wins, as in SQLite's own upsert.
    "DO UPDATE SET last_connect_us = EXCLUDED.last_connect_us, sessions = EXCLUDED.sessions,"
    " mean_interval_s = EXCLUDED.mean_interval_s, regular_every_s = EXCLUDED.regular_every_s,"
    " burst = EXCLUDED.burst WHERE EXCLUDED.last_connect_us >= client_timing.last_connect_us"};

const ForwardedTable kFingerprints{
    "fingerprints", "id, features",
    "SELECT id, features FROM fingerprints WHERE id IN (SELECT key FROM forward_queue"
    " WHERE kind = 'fingerprint' AND seq > ?3 AND seq <= ?4)",
    "id", "DO NOTHING"};

const std::array<const ForwardedTable*, 5> kReplacedTables = {&kSessions, &kTransactions,
                                                              &kAnalysis, &kTiming, &kFingerprints};

// Queue entries handled per batch (a first registration queues every
// analysis row the file already holds).
constexpr std::int64_t kQueuePerBatch = 20000;

std::string staging_name(const ForwardedTable& table) {
  return std::string("forward_") + table.name;
}

Result<std::string> random_instance() {
  std::ifstream urandom("/dev/urandom", std::ios::binary);
  std::array<unsigned char, 16> bytes{};
  if (!urandom.read(reinterpret_cast<char*>(bytes.data()), bytes.size())) {
    return Status::error("cannot read /dev/urandom for the file's instance name");
  }
  std::string out;
  for (unsigned char byte : bytes) out += fmt::format("{:02x}", byte);
  return out;
}

Result<std::string> local_instance(sqlite::Database& local) {
  auto known = read_state(local, StateTable::forward, "instance");
  if (!known) return known.status();
  if (known.value()) return *known.value();
  auto made = random_instance();
  if (!made) return made.status();
  if (Status kept = write_state(local, StateTable::forward, "instance", made.value()); !kept) return kept;
  return made;
}

// From now on the triggers of schema 10 queue what the analysis writes;
// what it wrote before (or before the fleet store knew this file) is
// queued here, once.
Status start_queueing(sqlite::Database& local, std::int64_t origin) {
  if (Status begun = local.exec("BEGIN IMMEDIATE"); !begun) return begun;
  Status done = write_state(local, StateTable::forward, "origin", std::to_string(origin));
  for (const char* sql :
       {"DELETE FROM forward_queue",
        "INSERT INTO forward_queue (kind, row_id) SELECT 'analysis', session_id"
        " FROM session_analysis ORDER BY session_id",
        "INSERT INTO forward_queue (kind, key) SELECT 'timing', client_addr FROM client_timing",
        "INSERT INTO forward_queue (kind, key) SELECT 'fingerprint', id FROM fingerprints",
        "DELETE FROM forward_state WHERE key = 'event_rows_done'",
        // The spool bound counts what is recorded from now on.
        "INSERT OR REPLACE INTO forward_state (key, value) SELECT 'spool_base',"
        " coalesce(max(id), 0) FROM event_rows"}) {
    if (!done) break;
    done = local.exec(sql);
  }
  if (!done) {
    (void)local.exec("ROLLBACK");
    return done.context("start forwarding");
  }
  return local.exec("COMMIT");
}

std::int64_t number(const Rows& rows, int column) {
  return std::stoll(std::string(rows.text(0, column)));
}

}  // namespace

Result<std::unique_ptr<Forwarder>> Forwarder::attach(sqlite::Database& local, Connection& fleet,
                                                     const std::string& host) {
  auto instance = local_instance(local);
  if (!instance) return instance.status().context("forwarder");
  const std::array<Param, 3> params = {Param::text(instance.value()), Param::text(host),
                                       Param::text(std::to_string(SystemClock().now_us()))};
  auto registered = fleet.exec(
      "INSERT INTO origins (instance, name, registered_us) VALUES ($1, $2, $3)"
      " ON CONFLICT (instance) DO UPDATE SET name = EXCLUDED.name RETURNING id",
      params);
  if (!registered) return registered.status().context("register this file as an origin");
  const std::int64_t origin = number(registered.value(), 0);
  auto known = read_state(local, StateTable::forward, "origin");
  if (!known) return known.status();
  if (known.value() != std::to_string(origin)) {
    if (Status queued = start_queueing(local, origin); !queued) return queued;
  }
  return std::unique_ptr<Forwarder>(new Forwarder(local, fleet, host, origin));
}

Status Forwarder::prepare_staging() {
  if (staging_ready_) return Status::ok();
  for (const ForwardedTable* table : kReplacedTables) {
    auto made = fleet_.exec(fmt::format(
        "CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {}) ON COMMIT DELETE ROWS",
        staging_name(*table), table->name));
    if (!made) return made.status();
  }
  staging_ready_ = true;
  return Status::ok();
}

namespace {

struct Range {
  std::int64_t after = 0;
  std::int64_t upto = 0;
  bool empty() const { return upto <= after; }
};

// Sends the rows `table.select` gives for range with COPY into `target`.
Result<std::int64_t> copy_rows(sqlite::Database& local, Connection& fleet,
                               const ForwardedTable& table, const std::string& target,
                               std::int64_t offset, const std::string& host, Range range,
                               std::int64_t& replaced) {
  if (range.empty()) return std::int64_t{0};
  auto q = local.prepare(table.select);
  if (!q) return q.status().context(fmt::format("read {}", table.name));
  q.value().bind(1, offset).bind(2, host).bind(3, range.after).bind(4, range.upto);
  const std::string copy_sql = fmt::format("COPY {} ({}) FROM STDIN", target, table.columns);
  const std::string_view columns = table.columns;
  const int width = 1 + static_cast<int>(std::count(columns.begin(), columns.end(), ','));
  auto sent = copy_query_rows(q.value(), fleet, CopyStream{copy_sql, width, 20000, &replaced, {}});
  if (!sent) return sent.status().context(fmt::format("forward {}", table.name));
  return sent;
}

// Replaces the fleet store's copies of the rows `table.select` gives.
Result<std::int64_t> replace_rows(sqlite::Database& local, Connection& fleet,
                                  const ForwardedTable& table, std::int64_t offset,
                                  const std::string& host, Range range, std::int64_t& replaced) {
  const std::string staging = staging_name(table);
  auto staged = copy_rows(local, fleet, table, staging, offset, host, range, replaced);
  if (!staged || staged.value() == 0) return staged;
  if (*table.shared_update != '\0') {
    auto done = fleet.exec(fmt::format(
        "INSERT INTO {0} ({1}) SELECT DISTINCT ON ({2}) {1} FROM {3} ORDER BY {2}"
        " ON CONFLICT ({2}) {4}",
        table.name, table.columns, table.replace_key, staging, table.shared_update));
    if (!done) return done.status().context(fmt::format("upsert {}", table.name));
    return staged;
  }
  for (const std::string& sql :
       {fmt::format("DELETE FROM {0} USING {1} WHERE {0}.{2} = {1}.{2}", table.name, staging,
                    table.replace_key),
        fmt::format("INSERT INTO {0} ({1}) SELECT {1} FROM {2}", table.name, table.columns,
                    staging)}) {
    if (auto done = fleet.exec(sql); !done) {
      return done.status().context(fmt::format("replace {}", table.name));
    }
  }
  return staged;
}

// The highest local id of each append-only table: what the fleet store
// holds of an origin, or what its file holds.
struct Watermarks {
  std::int64_t event_rows = 0;
  std::int64_t attribute_sets = 0;
  std::int64_t drops = 0;
  std::int64_t remote_events = 0;
};

struct LocalExtent {
  Watermarks newest;
  std::int64_t queue_first = 0;
  std::int64_t queue_last = 0;
};

Result<LocalExtent> local_extent(sqlite::Database& local) {
  auto q = local.prepare(
      "SELECT (SELECT coalesce(max(id), 0) FROM event_rows),"
      " (SELECT coalesce(max(id), 0) FROM attribute_sets),"
      " (SELECT coalesce(max(id), 0) FROM drops),"
      " (SELECT coalesce(max(id), 0) FROM remote_events),"
      " (SELECT coalesce(min(seq), 0) FROM forward_queue),"
      " (SELECT coalesce(max(seq), 0) FROM forward_queue)");
  if (!q) return q.status();
  auto row = q.value().step();
  if (!row) return row.status();
  auto& s = q.value();
  return LocalExtent{{s.column_int(0), s.column_int(1), s.column_int(2), s.column_int(3)},
                     s.column_int(4), s.column_int(5)};
}

}  // namespace

Result<Forwarder::Reached> Forwarder::send_batch(std::int64_t max_events,
                                                 ForwardCounts& counts) {
  if (Status ready = prepare_staging(); !ready) return ready;
  auto extent = local_extent(local_);
  if (!extent) return extent.status();
  const std::array<Param, 1> origin_param = {Param::text(std::to_string(origin_))};
  auto marks = fleet_.exec(
      "SELECT event_rows_done, attribute_sets_done, drops_done, remote_events_done"
      " FROM origins WHERE id = $1 FOR UPDATE",
      origin_param);
  if (!marks) return marks.status();
  if (marks.value().size() != 1) {
    return Status::error(fmt::format("origin {} is no longer in the fleet store", origin_));
  }
  const Watermarks done{number(marks.value(), 0), number(marks.value(), 1),
                        number(marks.value(), 2), number(marks.value(), 3)};
  const Watermarks& e = extent.value().newest;
  const std::int64_t queue_first = extent.value().queue_first;
  const std::int64_t queue_last = extent.value().queue_last;
  const Range events{done.event_rows, std::min(e.event_rows, done.event_rows + max_events)};
  const Range queue{queue_first - 1, std::min(queue_last, queue_first - 1 + kQueuePerBatch)};
  const std::int64_t offset = origin_ << origin_shift;
  std::int64_t& r = counts.replaced_values;

  auto sets = copy_rows(local_, fleet_, kAttributeSets, kAttributeSets.name, offset, host_,
                        {done.attribute_sets, e.attribute_sets}, r);
  if (!sets) return sets.status();
  auto sessions = replace_rows(local_, fleet_, kSessions, offset, host_, events, r);
  if (!sessions) return sessions.status();
  auto transactions = replace_rows(local_, fleet_, kTransactions, offset, host_, events, r);
  if (!transactions) return transactions.status();
  auto rows = copy_rows(local_, fleet_, kEventRows, kEventRows.name, offset, host_, events, r);
  if (!rows) return rows.status();
  auto drops = copy_rows(local_, fleet_, kDrops, kDrops.name, offset, host_,
                         {done.drops, e.drops}, r);
  if (!drops) return drops.status();
  auto remote = copy_rows(local_, fleet_, kRemoteEvents, kRemoteEvents.name, offset, host_,
                          {done.remote_events, e.remote_events}, r);
  if (!remote) return remote.status();
  auto analyses = replace_rows(local_, fleet_, kAnalysis, offset, host_, queue, r);
  if (!analyses) return analyses.status();
  auto timing = replace_rows(local_, fleet_, kTiming, offset, host_, queue, r);
  if (!timing) return timing.status();
  auto fingerprints = replace_rows(local_, fleet_, kFingerprints, offset, host_, queue, r);
  if (!fingerprints) return fingerprints.status();

  const std::array<Param, 6> moved = {
      Param::text(std::to_string(origin_)),
      Param::text(std::to_string(events.upto)),
      Param::text(std::to_string(std::max(done.attribute_sets, e.attribute_sets))),
      Param::text(std::to_string(std::max(done.drops, e.drops))),
      Param::text(std::to_string(std::max(done.remote_events, e.remote_events))),
      Param::text(std::to_string(SystemClock().now_us()))};
  auto updated = fleet_.exec(
      "UPDATE origins SET event_rows_done = $2, attribute_sets_done = $3, drops_done = $4,"
      " remote_events_done = $5, forwarded_us = $6 WHERE id = $1",
      moved);
  if (!updated) return updated.status();

  counts.events = rows.value();
  counts.sessions = sessions.value();
  counts.transactions = transactions.value();
  counts.analyses = analyses.value();
  counts.other_rows = sets.value() + drops.value() + remote.value() + timing.value() +
                      fingerprints.value();
  counts.caught_up = events.upto >= e.event_rows && queue.upto >= queue_last;
  return Reached{events.upto, queue.empty() ? 0 : queue.upto};
}

Result<ForwardCounts> Forwarder::forward_batch(std::int64_t max_events) {
  // One read snapshot of the local file; one transaction in the fleet store.
  if (Status begun = local_.exec("BEGIN"); !begun) return begun;
  if (auto begun = fleet_.exec("BEGIN"); !begun) {
    (void)local_.exec("ROLLBACK");
    return begun.status();
  }
  ForwardCounts counts;
  auto sent = send_batch(max_events, counts);
  Status committed = sent ? fleet_.exec("COMMIT").status() : sent.status();
  if (!sent) (void)fleet_.exec("ROLLBACK");
  (void)local_.exec("ROLLBACK");  // read only
  if (!committed) return committed.context(fmt::format("forward to {}", fleet_.url()));
  // The fleet store has the rows; the local notes follow. Should this fail,
  // the queued rows are sent again next time and replace their copies.
  const Reached& reached = sent.value();
  if (Status noted = write_state(local_, StateTable::forward, "event_rows_done",
                                 std::to_string(reached.events_done));
      !noted) {
    return noted.context("note the forwarded events");
  }
  if (reached.queue_done > 0) {
    auto trimmed = local_.prepare("DELETE FROM forward_queue WHERE seq <= ?1");
    if (!trimmed) return trimmed.status();
    if (Status done = trimmed.value().bind(1, reached.queue_done).run(); !done) {
      return done.context("trim the forward queue");
    }
  }
  return counts;
}

}  // namespace smtpscope::pg
