// Reads Postfix log files into the smtpscope database. Each batch of lines
// becomes events (joined to the milter's and policy server's sessions) and
// is committed in one transaction together with the file's position, so an
// interrupted ingest resumes exactly where its last commit ended and reading
// a file again adds nothing. Files are known by their first line, so a
// rotated (renamed, or gzip-compressed) file is recognised. follow mode
// reads on as the file grows and reopens it when it is rotated or
// truncated, like `tail -F`: a file is the one being read while its inode,
// its first line and the bytes before the read position stay the same (so
// a truncation is seen even when the file grew past that position again).
// A broken line never stops the ingest: it is counted as malformed, and so
// are lines longer than max_line_bytes (skipped) and lines dated before
// 1990 or days ahead (refused). A gzip file cut short keeps its complete
// lines and says so. The path "-" is standard input, read as it comes
// until its writer closes it (a pipe from `docker logs -f`); it is known by
// its first line like a file, and stream_name is the name its position is
// recorded under, so the same stream piped again adds nothing. A connection
// postscreen hands to smtpd is one session (see postscreen_handoff.h); what
// cleanup and qmgr say about a message joins the smtpd session that received
// it (queue_join.h), and smtpd's warning about the client's PTR name its
// connect (peer_name_check.h). One Ingester per thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "journal_reader.h"
#include "result.h"
#include "sqlite.h"

namespace smtpscope::ingest {

struct IngestOptions {
  std::optional<int> year;  // for timestamps without one; default from the file's mtime
  std::size_t batch_lines = 20000;
  std::size_t max_value_bytes = 1024;
  std::size_t max_line_bytes = 65536;  // ingest.max_line_bytes
  bool follow = false;
  std::string stream_name = "stdin";  // path "-": the name of its position record
  std::chrono::milliseconds poll_interval{250};
  // Called now and then with (bytes, lines) read so far in this run.
  std::function<void(std::int64_t, std::uint64_t)> progress;
  // When set, held around each batch's write transaction (the analysis
  // beside the ingest takes it around its own).
  std::mutex* write_lock = nullptr;
  // Called after each batch is committed (wakes the analysis beside it).
  std::function<void()> committed;
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
  std::uint64_t too_long = 0;      // of the malformed: longer than max_line_bytes, skipped
  std::uint64_t out_of_range = 0;  // of the malformed: dated before 1990 or days ahead
  std::string first_out_of_range;  // the first of those lines (raw, at most 256 bytes)
  std::uint64_t bad_time = 0;      // of the malformed: a time in no form smtpscope reads
  std::string first_bad_time;      // the first of those lines (raw, at most 256 bytes)
  // A gzip file whose data stops before its stream ends (cut short): its
  // complete lines were kept, the rest is lost. The caller reports a failure.
  bool cut_short = false;

  void add(const IngestCounts& batch);  // lines and the malformed details
};

class Ingester {
 public:
  static Result<std::unique_ptr<Ingester>> open(const std::string& database_path,
                                                int busy_timeout_ms, IngestOptions options);
  ~Ingester();

  // Ingests one file; with options.follow, keeps reading until `stop`.
  Result<IngestCounts> ingest(const std::string& path, const std::atomic<bool>& stop);
  // Ingests Postfix's entries of the systemd journal from where the last
  // run stopped (its cursor is saved with each commit: a second run adds
  // nothing, an interrupted one resumes); with options.follow, until `stop`.
  // already_complete when nothing came after the saved cursor.
  Result<IngestCounts> ingest_journal(const JournalSelection& selection,
                                      const std::atomic<bool>& stop);

 private:
  struct Impl;
  explicit Ingester(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace smtpscope::ingest
