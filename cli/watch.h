// `smtpscope watch`: the smart `tail -F mail.log | grep RSET`. Shows each
// session as it ends (from the database the daemons write, and, with --log,
// from a log followed at the same time), one line per session: time,
// client, HELO, stage string, pattern, and markers when the client's
// fingerprint or behaviour (the pattern naming its session) changed. Filters by client, pattern and quirk. On a terminal
// plain text; with --json one JSON object per line. Stops on SIGINT/SIGTERM.
// On a PostgreSQL store it polls the sessions every host forwarded (with
// the host in each line), connecting again when the server went away;
// --log, which records, needs the local file.
#pragma once

#include <string>

namespace smtpscope::cli {

struct WatchOptions {
  std::string database;       // an SQLite file, or a PostgreSQL URL (then no --log)
  std::string password_file;  // for a PostgreSQL URL
  std::string log_file;  // optional: follow it too (as ingest --follow)
  std::string client;
  std::string pattern;
  std::string quirk;
  std::string patterns_file;
  bool json = false;
  bool show_host = false;  // a column with each session's mail server (always on PostgreSQL)
  double interval_s = 0.25;
};

int run_watch(const WatchOptions& asked);

}  // namespace smtpscope::cli
