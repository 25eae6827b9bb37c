#include "session_join.h"

namespace smtpscope {
namespace {

// A session's events from other sensors arrive within this much of its
// connect and close (separate processes commit in batches, clocks agree).
constexpr std::int64_t skew_us = 5'000'000;
// No SMTP session outlives this; older sessions are never matched.
constexpr std::int64_t longest_session_us = 3'600'000'000;
// Matching on the address alone: syslog times are whole seconds.
constexpr std::int64_t address_window_us = 2'000'000;
// sessions.join_method of a session another sensor joined.
constexpr const char* join_by_endpoint = "client address+port+time";
constexpr const char* join_by_address = "client address+smtpd pid+time";

}  // namespace

struct SessionJoiner::Statements {
  sqlite::Statement find_adoptable;
  sqlite::Statement adopt;
  sqlite::Statement find_open;
  sqlite::Statement open_session;
  sqlite::Statement note_source;
  sqlite::Statement upsert_transaction;
  sqlite::Statement count_transactions;
  sqlite::Statement find_by_address;
};

Result<std::unique_ptr<SessionJoiner>> SessionJoiner::create(sqlite::Database& db) {
  auto prepared = db.prepare_all({
      "SELECT id FROM sessions WHERE client_addr = ?1 AND client_port IS ?2"
      " AND instr(' ' || sources || ' ', ' milter ') = 0"
      " AND connect_us BETWEEN ?3 - ?4 AND ?3 + ?5 ORDER BY connect_us LIMIT 1",
      "UPDATE sessions SET stream = ?2, connect_us = min(connect_us, ?3),"
      " client_name = coalesce(?4, client_name), client_ptr = coalesce(?5, client_ptr),"
      " server_addr = coalesce(?6, server_addr), server_port = coalesce(?7, server_port),"
      " partial = 0, sources = trim(sources || ' milter'),"
      " join_method = 'client address+port+time' WHERE id = ?1",
      "SELECT id FROM sessions WHERE client_addr = ?1 AND client_port IS ?2"
      " AND connect_us BETWEEN ?3 - ?5 AND ?3 + ?4"
      " AND (close_us IS NULL OR close_us >= ?3 - ?4)"
      " AND (host IS NULL OR ?6 IS NULL OR host = ?6) ORDER BY connect_us DESC LIMIT 1",
      "INSERT INTO sessions (stream, client_addr, client_port, client_name, client_ptr,"
      " server_addr, server_port, connect_us, partial, sources, join_method, host)"
      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
      // A second part of the same sensor (smtpd after postscreen) adds the
      // client name postscreen does not log.
      "UPDATE sessions SET sources = CASE instr(' ' || sources || ' ', ' ' || ?2 || ' ')"
      " WHEN 0 THEN trim(sources || ' ' || ?2) ELSE sources END,"
      " join_method = CASE instr(' ' || sources || ' ', ' ' || ?2 || ' ')"
      " WHEN 0 THEN coalesce(join_method, ?3) ELSE join_method END,"
      " host = coalesce(host, ?4), client_name = coalesce(client_name, ?5)"
      " WHERE id = ?1 AND (instr(' ' || sources || ' ', ' ' || ?2 || ' ') = 0"
      " OR (client_name IS NULL AND ?5 IS NOT NULL))",
      "INSERT INTO transactions (session_id, seq, mail_from, started_us) VALUES (?1, ?2, ?3, ?4)"
      " ON CONFLICT (session_id, seq) DO UPDATE SET"
      " mail_from = coalesce(transactions.mail_from, excluded.mail_from),"
      " started_us = min(transactions.started_us, excluded.started_us) RETURNING id",
      // Transactions are numbered 1..n within a session, so the count is
      // the highest ordinal seen.
      "UPDATE sessions SET transactions = max(transactions, ?2) WHERE id = ?1",
      "SELECT id FROM sessions WHERE client_addr = ?1"
      " AND instr(' ' || sources || ' ', ' ' || ?4 || ' ') = 0"
      " AND connect_us BETWEEN ?2 - ?3 AND ?2 + ?3"
      " AND (host IS NULL OR ?5 IS NULL OR host = ?5) ORDER BY abs(connect_us - ?2) LIMIT 1",
  });
  if (!prepared) return prepared.status();
  auto& p = prepared.value();
  auto statements = std::unique_ptr<Statements>(new Statements{
      std::move(p[0]), std::move(p[1]), std::move(p[2]),
      std::move(p[3]), std::move(p[4]), std::move(p[5]),
      std::move(p[6]), std::move(p[7])});
  return std::unique_ptr<SessionJoiner>(new SessionJoiner(db, std::move(statements)));
}

SessionJoiner::SessionJoiner(sqlite::Database& db, std::unique_ptr<Statements> statements)
    : db_(db), statements_(std::move(statements)) {}

SessionJoiner::~SessionJoiner() = default;

Result<std::optional<std::int64_t>> SessionJoiner::adopt_for_milter(const Endpoints& endpoints,
                                                                    const std::string& stream,
                                                                    std::int64_t connect_us) {
  auto& find = statements_->find_adoptable;
  find.bind(1, endpoints.client_addr)
      .bind(2, endpoints.client_port)
      .bind(3, connect_us)
      .bind(4, skew_us)
      .bind(5, longest_session_us);
  auto row = find.step();
  if (!row) return row.status().context("find a session to adopt");
  if (!row.value()) {
    find.reset();
    return std::optional<std::int64_t>();
  }
  const std::int64_t id = find.column_int(0);
  find.reset();
  Status adopted = statements_->adopt.bind(1, id)
                       .bind(2, stream)
                       .bind(3, connect_us)
                       .bind(4, endpoints.client_name)
                       .bind(5, endpoints.client_ptr)
                       .bind(6, endpoints.server_addr)
                       .bind(7, endpoints.server_port)
                       .run();
  if (!adopted) return adopted.context("adopt session");
  return std::optional<std::int64_t>(id);
}

namespace {

// The first column of the statement's first row, if any.
Result<std::optional<std::int64_t>> first_id(sqlite::Statement& find) {
  auto row = find.step();
  if (!row) return row.status().context("find session");
  std::optional<std::int64_t> id;
  if (row.value()) id = find.column_int(0);
  find.reset();
  return id;
}

}  // namespace

Result<std::int64_t> SessionJoiner::find_or_open(const Endpoints& endpoints,
                                                 const std::string& source,
                                                 const std::string& stream, std::int64_t time_us,
                                                 bool observed_connect) {
  auto& find = statements_->find_open;
  find.bind(1, endpoints.client_addr)
      .bind(2, endpoints.client_port)
      .bind(3, time_us)
      .bind(4, skew_us)
      .bind(5, longest_session_us)
      .bind(6, endpoints.host);
  return join_or_open(find, join_by_endpoint, endpoints, source, stream, time_us,
                      observed_connect);
}

Result<std::int64_t> SessionJoiner::find_or_open_by_address(const Endpoints& endpoints,
                                                            const std::string& source,
                                                            const std::string& stream,
                                                            std::int64_t time_us,
                                                            bool observed_connect) {
  auto& find = statements_->find_by_address;
  find.bind(1, endpoints.client_addr)
      .bind(2, time_us)
      .bind(3, address_window_us)
      .bind(4, source)
      .bind(5, endpoints.host);
  return join_or_open(find, join_by_address, endpoints, source, stream, time_us,
                      observed_connect);
}

// The session `find` (bound) names, with `source` noted on it; else a new
// session opened by `source` (which names its sources and join method
// itself, so it needs no second write).
Result<std::int64_t> SessionJoiner::join_or_open(sqlite::Statement& find,
                                                 const char* join_method,
                                                 const Endpoints& endpoints,
                                                 const std::string& source,
                                                 const std::string& stream, std::int64_t time_us,
                                                 bool observed_connect) {
  auto found = first_id(find);
  if (!found) return found.status();
  if (!found.value()) return open(endpoints, source, stream, time_us, observed_connect);
  if (Status noted = statements_->note_source.bind(1, *found.value())
                         .bind(2, source)
                         .bind(3, std::string(join_method))
                         .bind(4, endpoints.host)
                         .bind(5, endpoints.client_name)
                         .run();
      !noted) {
    return noted.context("note the session's source");
  }
  return *found.value();
}

Result<std::int64_t> SessionJoiner::open(const Endpoints& endpoints, const std::string& source,
                                         const std::string& stream, std::int64_t time_us,
                                         bool observed_connect) {
  Status opened = statements_->open_session.bind(1, stream)
                      .bind(2, endpoints.client_addr)
                      .bind(3, endpoints.client_port)
                      .bind(4, endpoints.client_name)
                      .bind(5, endpoints.client_ptr)
                      .bind(6, endpoints.server_addr)
                      .bind(7, endpoints.server_port)
                      .bind(8, time_us)
                      .bind(9, std::int64_t{observed_connect ? 0 : 1})
                      .bind(10, source)
                      .bind(11, std::string("opened by ") + source)
                      .bind(12, endpoints.host)
                      .run();
  if (!opened) return opened.context("open session");
  return db_.last_insert_rowid();
}

Result<std::int64_t> SessionJoiner::transaction(std::int64_t session_id, std::int64_t seq,
                                                const std::optional<std::string>& mail_from,
                                                std::int64_t time_us) {
  auto& upsert = statements_->upsert_transaction;
  upsert.bind(1, session_id).bind(2, seq).bind(3, mail_from).bind(4, time_us);
  auto row = upsert.step();
  if (!row || !row.value()) {
    upsert.reset();
    return row ? Status::error("upsert transaction returned no row") : row.status();
  }
  const std::int64_t id = upsert.column_int(0);
  upsert.reset();
  if (Status counted = statements_->count_transactions.bind(1, session_id).bind(2, seq).run();
      !counted) {
    return counted;
  }
  return id;
}

}  // namespace smtpscope
