// The least an ingest of bench/gen_maillog.py's 1,000,000-line log could
// write (issue 4): one sessions row per smtpd session, one events row per
// session holding all its log facts (as if folded, instead of one row per
// line), and one remote_events row per smtp client line; into the real
// schema, prepared statements, one transaction, no joins, no parsing.
// Its time bounds the ingest's lines/s from above on this machine.
// Usage: ingest_write_floor DATABASE [SESSIONS] [REMOTE_LINES] [LOG_LINES]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "store.h"

using namespace smtpscope;

namespace {

Status write_rows(sqlite::Database& db, long sessions, long remote_lines) {
  auto session = db.prepare(
      "INSERT INTO sessions (stream, client_addr, client_port, client_name, connect_us, close_us,"
      " sources, join_method) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'log', 'opened by log')");
  auto event = db.prepare(
      "INSERT INTO event_rows (session_id, source, stage, time_us, attributes)"
      " VALUES (?1, 'log', 'log', ?2, ?3)");
  auto remote = db.prepare(
      "INSERT INTO remote_events (time_us, server_name, server_addr, server_port, kind, status,"
      " queue_id, recipient, dsn) VALUES (?1, 'mx.example.net', ?2, 25, 'status', 'sent', ?3,"
      " 'user@example.net', '2.0.0')");
  for (const auto* prepared : {&session, &event, &remote}) {
    if (!*prepared) return prepared->status();
  }
  const std::string facts =
      R"({"lines":[{"stage":"connect","t":0},{"stage":"tls","protocol":"TLSv1.3"},)"
      R"({"stage":"queued","queue_id":"4F1C2A0D11"},{"stage":"close","ehlo":"1","mail":"1",)"
      R"("rcpt":"1","data":"1","quit":"1","commands":"5"}]})";
  const std::int64_t t0 = 1'780'000'000'000'000;
  if (Status begun = db.exec("BEGIN"); !begun) return begun;
  for (long i = 0; i < sessions; ++i) {
    const std::int64_t t = t0 + i * 1000;
    Status s = session.value()
                   .bind(1, "log:mx:" + std::to_string(1000 + i % 400))
                   .bind(2, "10." + std::to_string(i % 200) + "." + std::to_string(i * 7 % 256) +
                                "." + std::to_string(i % 250))
                   .bind(3, std::int64_t{1024 + i % 60000})
                   .bind(4, std::string("unknown"))
                   .bind(5, t)
                   .bind(6, t + 900'000)
                   .run();
    if (s) s = event.value().bind(1, db.last_insert_rowid()).bind(2, t).bind(3, facts).run();
    if (!s) return s;
  }
  for (long i = 0; i < remote_lines; ++i) {
    Status s = remote.value()
                   .bind(1, t0 + i * 700)
                   .bind(2, "192.0." + std::to_string(i % 256) + "." + std::to_string(i % 100))
                   .bind(3, "4F1C2A" + std::to_string(i))
                   .run();
    if (!s) return s;
  }
  return db.exec("COMMIT");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: ingest_write_floor DATABASE [SESSIONS] [REMOTE_LINES] [LOG_LINES]\n");
    return 2;
  }
  const std::string path = argv[1];
  const long sessions = argc > 2 ? std::atol(argv[2]) : 105206;
  const long remote_lines = argc > 3 ? std::atol(argv[3]) : 138194;
  const double log_lines = argc > 4 ? std::atof(argv[4]) : 1000005;
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  auto db = open_database(path, 5000);
  if (!db) {
    std::fprintf(stderr, "%s\n", db.message().c_str());
    return 1;
  }
  // The ingest connection's own settings (ingest/ingester.cpp).
  (void)db.value()->exec("PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 10000");
  const auto start = std::chrono::steady_clock::now();
  if (Status written = write_rows(*db.value(), sessions, remote_lines); !written) {
    std::fprintf(stderr, "%s\n", written.message().c_str());
    return 1;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("rows=%ld seconds=%.3f lines_per_second_at_most=%.0f\n",
              2 * sessions + remote_lines, seconds, log_lines / seconds);
  return 0;
}
