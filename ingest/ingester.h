// Reads Postfix log files into the smtpscope database. Each batch of lines
// becomes events (joined to the milter's and policy server's sessions) and
// is committed in one transaction together with the file's position, so an
// interrupted ingest resumes exactly where its last commit ended and reading
// a file again adds nothing. Files are known by their first line, so a
// rotated (renamed, or gzip-compressed) file is recognised. follow mode
// reads on as the file grows and reopens it when it is rotated or
// truncated, like `tail -F`. A broken line never stops the ingest: it is
// counted as malformed. One Ingester per thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "result.h"
#include "sqlite.h"

namespace smtpscope::ingest {

struct IngestOptions {
  std::optional<int> year;  // for timestamps without one; default from the file's mtime
  std::size_t batch_lines = 20000;
  std::size_t max_value_bytes = 1024;
  bool follow = false;
  std::chrono::milliseconds poll_interval{250};
  // Called now and then with (bytes, lines) read so far in this run.
  std::function<void(std::int64_t, std::uint64_t)> progress;
};

struct IngestCounts {
  std::uint64_t lines = 0;
  std::uint64_t parsed = 0;     // lines that became events
  std::uint64_t skipped = 0;    // well-formed lines smtpscope does not use
  std::uint64_t malformed = 0;  // lines that are not syslog lines, or broken records
  std::int64_t resumed_from = 0;
  std::int64_t bytes = 0;       // read in this run
  bool already_complete = false;
  bool no_complete_line = false;  // empty, or one unterminated line: nothing to read yet
  // The file ended inside a line (being written, or cut): it was not used
  // and the position stays before it, so a later run reads it once complete.
  bool incomplete_last_line = false;
  std::uint64_t files = 0;      // files read (follow mode: rotations + 1)
};

class Ingester {
 public:
  static Result<std::unique_ptr<Ingester>> open(const std::string& database_path,
                                                int busy_timeout_ms, IngestOptions options);
  ~Ingester();

  // Ingests one file; with options.follow, keeps reading until `stop`.
  Result<IngestCounts> ingest(const std::string& path, const std::atomic<bool>& stop);

 private:
  struct Impl;
  explicit Ingester(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace smtpscope::ingest
