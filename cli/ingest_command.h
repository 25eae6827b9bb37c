// `smtpscope ingest`: reads Postfix log files into the database, prints a
// summary line per file (lines, parsed, skipped, malformed, rate, and which
// of the malformed were too long or dated out of range), shows progress on
// a terminal only, and stops cleanly on SIGINT/SIGTERM after committing
// what it has read (the next run resumes there). The line length bound is
// ingest.max_line_bytes of the configuration file (its default without
// one; a bad file is a usage error, exit 2). A file that cannot be read to
// its end (a cut .gz: after keeping its complete lines) makes the exit 1,
// and so does one whose lines all have a time in no form it reads (the
// error quotes the first). The file "-" is standard input; --journal reads
// the systemd journal instead, with the same summary line.
// With a fleet store (--db postgresql://... given to ingest, else the
// configuration's database.url), the lines are read into the local file
// (database.path) as always, and its new rows are forwarded there
// (pg_forwarder.h): while following, in the background; at the end, until
// caught up. A fleet store that cannot be reached leaves them in the file
// for the next ingest or `db forward`, and makes the exit 1.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace smtpscope::cli {

struct IngestCommand {
  std::vector<std::string> files;
  bool follow = false;
  bool quiet = false;
  std::optional<int> year;
  std::string stream_name = "stdin";  // file "-": its position record's name
  bool journal = false;               // read the systemd journal instead of files
  std::string journal_path;           // a journal file or directory; empty: the system's
  std::string journal_unit;           // only this unit's entries
  std::string database;
  std::string forward_to;      // postgresql://...; empty: the configuration's database.url
  std::string password_file;   // for forward_to; empty: the configuration's
  std::string config_path = "/etc/smtpscope/smtpscope.yaml";  // read if it exists
  int busy_timeout_ms = 5000;
};

int run_ingest(const IngestCommand& command);

}  // namespace smtpscope::cli
