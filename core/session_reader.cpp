#include "session_reader.h"

#include "sql_dialect.h"

#include <algorithm>
#include <string_view>

namespace smtpscope {
namespace {

std::optional<std::int64_t> optional_int(const sql::Statement& row, int column) {
  if (row.column_is_null(column)) return std::nullopt;
  return row.column_int(column);
}

constexpr const char* transactions_query =
    "SELECT seq, mail_from, rcpt_accepted, rcpt_rejected, data_us IS NOT NULL, queue_id,"
    " body_bytes, outcome FROM transactions WHERE session_id = ?1 ORDER BY seq";

// A row with set_id or base_id holds a patch against that attribute set or
// whole row of its session (schema 9). In the order they were recorded:
// read_events puts them in time order (sorting here, by an expression over
// the attributes made whole, made them whole twice and ran a sorter per
// session: a third of what the stored analysis spent reading).
std::string events_query(sql::Dialect d) {
  const std::string patch(sql::json_patch_function(d));
  return "SELECT e.source, e.stage, e.time_us, t.seq, e.argument, CASE"
         " WHEN e.set_id IS NOT NULL THEN " + patch + "(a.attributes, e.attributes)"
         " WHEN e.base_id IS NOT NULL THEN " + patch + "(b.attributes, e.attributes)"
         " ELSE e.attributes END FROM event_rows e"
         " LEFT JOIN attribute_sets a ON a.id = e.set_id"
         " LEFT JOIN event_rows b ON b.id = e.base_id"
         " LEFT JOIN transactions t ON t.id = e.transaction_id"
         " WHERE e.session_id = ?1 ORDER BY e.id";
}

// Whether the attributes (a flat JSON object, compact as SQLite writes it or
// spaced as PostgreSQL does) hold "clock": "second". Inside a string value
// every quote is escaped, so a quote, clock and a quote is always a key.
bool clock_is_second(std::string_view json) {
  constexpr std::string_view key = "\"clock\"";
  const std::size_t at = json.find(key);
  if (at == std::string_view::npos) return false;
  std::string_view rest = json.substr(at + key.size());
  auto skip_blanks = [&rest] {
    while (!rest.empty() && (rest.front() == ' ' || rest.front() == '\t')) rest.remove_prefix(1);
  };
  skip_blanks();
  if (rest.empty() || rest.front() != ':') return false;
  rest.remove_prefix(1);
  skip_blanks();
  return rest.starts_with("\"second\"");
}

// Events in the order they were recorded, put in time order: a log line
// stamped in whole seconds by the end of its second, when it had certainly
// happened; events of the same time stay in the order they were recorded.
void in_time_order(std::vector<EventRecord>& events) {
  std::vector<std::pair<std::int64_t, std::size_t>> order;
  order.reserve(events.size());
  bool sorted = true;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const EventRecord& e = events[i];
    const bool end_of_second = e.source == "log" && clock_is_second(e.attributes_json);
    order.emplace_back(e.time_us + (end_of_second ? 999999 : 0), i);
    sorted = sorted && (i == 0 || order[i - 1].first <= order[i].first);
  }
  if (sorted) return;
  std::sort(order.begin(), order.end());
  std::vector<EventRecord> out;
  out.reserve(events.size());
  for (const auto& [time, i] : order) out.push_back(std::move(events[i]));
  events = std::move(out);
}

// Both take a statement prepared once for all sessions (preparing one per
// session was a third of `smtpscope clients`, measured with perf).
Status read_transactions(sql::Statement& q, SessionRecord& session) {
  q.bind(1, session.id);
  for (;;) {
    auto row = q.step();
    if (!row) return row.status();
    if (!row.value()) {
      q.reset();
      return Status::ok();
    }
    session.transactions.push_back(TransactionRecord{
        q.column_int(0), q.column_text(1), q.column_int(2), q.column_int(3), q.column_int(4) != 0,
        q.column_text(5), optional_int(q, 6), q.column_text(7)});
  }
}

Status read_events(sql::Statement& q, SessionRecord& session) {
  q.bind(1, session.id);
  for (;;) {
    auto row = q.step();
    if (!row) return row.status();
    if (!row.value()) {
      q.reset();
      in_time_order(session.events);
      return Status::ok();
    }
    session.events.push_back(EventRecord{q.column_text(0), q.column_text(1), q.column_int(2),
                                         optional_int(q, 3), q.column_text(4), q.column_text(5)});
  }
}

// Ids the program chose (never text from outside), written into the SQL.
std::string id_list(const std::vector<std::int64_t>& ids) {
  std::string out = ids.empty() ? "NULL" : "";
  for (std::int64_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out;
}

// Only the filters that are set appear in the SQL: "(?1 IS NULL OR
// client_addr = ?1)" kept SQLite from the sessions_by_client index, so one
// client's report scanned every session (measured: 9.9 s at 10M sessions).
std::string sessions_query(const SessionFilter& filter) {
  std::string where = "1 = 1";
  if (filter.client_addr) where += " AND client_addr = ?1";
  if (filter.since_us) where += " AND connect_us >= ?2";
  if (filter.closed_since_us) where += " AND close_us >= ?4";
  if (filter.host) where += " AND host = ?5";
  if (filter.ids) where += " AND id IN (" + id_list(*filter.ids) + ")";
  return "SELECT * FROM (SELECT id, client_addr, client_port, client_name, server_addr,"
         " server_port, connect_us, close_us, helo, partial, coalesce(protocol, ''),"
         " coalesce(host, '') FROM sessions"
         " WHERE " + where + " ORDER BY connect_us DESC, id DESC LIMIT ?3) AS recent"
         " ORDER BY connect_us, id";
}

SessionRecord session_of(const sql::Statement& q) {
  SessionRecord s;
  s.id = q.column_int(0);
  s.client_addr = q.column_text(1);
  s.client_port = optional_int(q, 2);
  s.client_name = q.column_text(3);
  s.server_addr = q.column_text(4);
  s.server_port = optional_int(q, 5);
  s.connect_us = q.column_int(6);
  s.close_us = optional_int(q, 7);
  s.helo = q.column_text(8);
  s.partial = q.column_int(9) != 0;
  s.protocol = q.column_text(10);
  s.host = q.column_text(11);
  return s;
}

// The three statements step side by side: each session is complete, with
// its transactions and events, before the next row is read.
Status visit_in_transaction(sql::Connection& db, const SessionFilter& filter,
                            const SessionVisitor& visit) {
  auto query = db.prepare(sessions_query(filter));
  if (!query) return query.status();
  auto& q = query.value();
  if (filter.client_addr) q.bind(1, *filter.client_addr);
  if (filter.since_us) q.bind(2, *filter.since_us);
  q.bind(3, static_cast<std::int64_t>(filter.limit));
  if (filter.closed_since_us) q.bind(4, *filter.closed_since_us);
  if (filter.host) q.bind(5, *filter.host);
  auto transactions = db.prepare(transactions_query);
  if (!transactions) return transactions.status();
  auto events = db.prepare(events_query(db.dialect()));
  if (!events) return events.status();
  for (;;) {
    auto row = q.step();
    if (!row) return row.status();
    if (!row.value()) break;
    SessionRecord session = session_of(q);
    if (Status read = read_transactions(transactions.value(), session); !read) return read;
    if (Status read = read_events(events.value(), session); !read) return read;
    if (Status visited = visit(std::move(session)); !visited) return visited;
  }
  return Status::ok();
}

}  // namespace

// One read transaction for the whole read: the sessions and their events
// are from one moment, and SQLite takes its read lock once instead of once
// per statement (two fcntl calls each; ~20% of `smtpscope clients`).
Status for_each_session(sql::Connection& db, const SessionFilter& filter,
                        const SessionVisitor& visit) {
  if (db.in_transaction()) return visit_in_transaction(db, filter, visit);
  if (Status begun = db.exec("BEGIN"); !begun) return begun.context("begin reading");
  Status visited = visit_in_transaction(db, filter, visit);
  (void)db.exec(visited ? "COMMIT" : "ROLLBACK");
  return visited;
}

Result<std::vector<SessionRecord>> read_sessions(sql::Connection& db, const SessionFilter& filter) {
  std::vector<SessionRecord> sessions;
  Status read = for_each_session(db, filter, [&sessions](SessionRecord session) {
    sessions.push_back(std::move(session));
    return Status::ok();
  });
  if (!read) return read;
  return sessions;
}

Status for_each_session(sqlite::Database& db, const SessionFilter& filter,
                        const SessionVisitor& visit) {
  return for_each_session(*sql::over_sqlite(db), filter, visit);
}

Result<std::vector<SessionRecord>> read_sessions(sqlite::Database& db, const SessionFilter& filter) {
  return read_sessions(*sql::over_sqlite(db), filter);
}

}  // namespace smtpscope
