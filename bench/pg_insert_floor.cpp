// The floor of writing events into PostgreSQL from one connection (issue 16:
// >= 100,000 events/s from one writer): rows shaped like the events table
// (schema/001_initial.sql), committed in batches like the daemons' writer
// (store.batch_size, 4096 by default), either as one multi-row INSERT with
// bound parameters per batch or as one COPY FROM STDIN (text format) per
// batch. No joins, no sessions rows: what the wire and the server allow.
// Usage: pg_insert_floor URL insert|copy [ROWS] [BATCH]
// The password comes from SMTPSCOPE_DB_PASSWORD or PGPASSWORD.
// bench/pg_insert_floor.py starts a server and runs both methods.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "pg_copy_text.h"
#include "pg_connection.h"

using namespace smtpscope;

namespace {

constexpr int kColumns = 6;
constexpr std::string_view kStages[] = {"connect", "helo", "mail", "rcpt", "data", "eom", "close"};

struct Row {
  std::string session_id, stage, time_us, argument, attributes;
};

Row make_row(long i) {
  const long session = i / 7;
  const std::string_view stage = kStages[i % 7];
  std::string argument = stage == "helo"   ? "mail" + std::to_string(session % 500) + ".example.net"
                         : stage == "mail" ? "<sender" + std::to_string(session) + "@example.org>"
                         : stage == "rcpt" ? "<user" + std::to_string(i % 90) + "@example.com>"
                                           : "";
  return {std::to_string(session), std::string(stage),
          std::to_string(1'780'000'000'000'000 + i * 1000), std::move(argument),
          R"({"client_addr":"10.1.2.3","queue_id":"4F1C2A0D11","esmtp":"8BITMIME"})"};
}

// "($7,$8,...,$12)" for the row whose first parameter is number first + 1.
std::string placeholders(long first) {
  std::string out = "(";
  for (long c = 1; c <= kColumns; ++c) out += (c > 1 ? ",$" : "$") + std::to_string(first + c);
  return out + ")";
}

Status insert_batch(pg::Connection& db, long first, long count) {
  std::string sql =
      "INSERT INTO bench_events (session_id, source, stage, time_us, argument, attributes) VALUES ";
  std::vector<pg::Param> params;
  params.reserve(static_cast<std::size_t>(count) * kColumns);
  for (long i = 0; i < count; ++i) {
    Row row = make_row(first + i);
    const long p = i * kColumns;
    sql += (i ? "," : "") + placeholders(p);
    params.push_back(pg::Param::text(row.session_id));
    params.push_back(pg::Param::text("milter"));
    params.push_back(pg::Param::text(row.stage));
    params.push_back(pg::Param::text(row.time_us));
    params.push_back(row.argument.empty() ? pg::Param::null() : pg::Param::text(row.argument));
    params.push_back(pg::Param::text(row.attributes));
  }
  return db.exec(sql, params).status();
}

Status copy_batch(pg::Connection& db, long first, long count) {
  std::string data;
  for (long i = 0; i < count; ++i) {
    Row row = make_row(first + i);
    data += row.session_id + "\tmilter\t" + row.stage + "\t" + row.time_us + "\t";
    if (row.argument.empty()) {
      data += "\\N";
    } else {
      smtpscope::pg::append_copy_field(data, row.argument);
    }
    data += '\t';
    smtpscope::pg::append_copy_field(data, row.attributes);
    data += '\n';
  }
  auto copied = db.copy_in(
      "COPY bench_events (session_id, source, stage, time_us, argument, attributes) FROM STDIN",
      data);
  if (!copied) return copied.status();
  return copied.value() == count ? Status::ok() : Status::error("COPY wrote fewer rows");
}

// One statement each: PQexecParams runs one statement at a time.
constexpr std::string_view kTable[] = {
    "DROP TABLE IF EXISTS bench_events",
    R"(CREATE TABLE bench_events (
         id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
         session_id      bigint NOT NULL,
         transaction_id  bigint,
         source          text NOT NULL CHECK (source IN ('milter', 'policy', 'log')),
         stage           text NOT NULL,
         time_us         bigint NOT NULL,
         argument        text,
         attributes      text NOT NULL DEFAULT '{}'))",
    "CREATE INDEX bench_events_by_session ON bench_events (session_id, time_us)"};

}  // namespace

int main(int argc, char** argv) {
  const std::string method = argc > 2 ? argv[2] : "";
  if (method != "insert" && method != "copy") {
    std::fprintf(stderr, "usage: pg_insert_floor URL insert|copy [ROWS] [BATCH]\n");
    return 2;
  }
  const long rows = argc > 3 ? std::atol(argv[3]) : 400'000;
  const long batch = argc > 4 ? std::atol(argv[4]) : 4096;
  if (rows <= 0 || batch <= 0 || batch * kColumns > 65535) {
    std::fprintf(stderr, "pg_insert_floor: ROWS > 0 and 0 < BATCH <= %d\n", 65535 / kColumns);
    return 2;
  }
  auto url = pg::parse_url(argv[1]);
  auto password = pg::resolve_password(pg::PasswordSources::from_environment(""));
  if (!url || !password) {
    std::fprintf(stderr, "pg_insert_floor: %s\n",
                 (!url ? url.message() : password.message()).c_str());
    return 2;
  }
  auto db = pg::Connection::open(url.value(), password.value());
  if (!db) {
    std::fprintf(stderr, "pg_insert_floor: %s\n", db.message().c_str());
    return 1;
  }
  for (std::string_view statement : kTable) {
    if (auto created = db.value()->exec(statement); !created) {
      std::fprintf(stderr, "pg_insert_floor: %s\n", created.message().c_str());
      return 1;
    }
  }
  const auto start = std::chrono::steady_clock::now();
  for (long first = 0; first < rows; first += batch) {
    const long count = std::min(batch, rows - first);
    Status written = method == "copy" ? copy_batch(*db.value(), first, count)
                                      : insert_batch(*db.value(), first, count);
    if (!written) {
      std::fprintf(stderr, "pg_insert_floor: %s\n", written.message().c_str());
      return 1;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("method=%s rows=%ld batch=%ld seconds=%.3f rows_per_second=%.0f\n", method.c_str(),
              rows, batch, seconds, static_cast<double>(rows) / seconds);
  return 0;
}
