// `smtpscope ingest`: reads Postfix log files into the database, prints a
// summary line per file (lines, parsed, skipped, malformed, rate), shows
// progress on a terminal only, and stops cleanly on SIGINT/SIGTERM after
// committing what it has read (the next run resumes there).
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
  std::string database;
  int busy_timeout_ms = 5000;
};

int run_ingest(const IngestCommand& command);

}  // namespace smtpscope::cli
