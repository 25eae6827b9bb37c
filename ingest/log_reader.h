// Reads a log file as lines: plain text or gzip (detected by content), from
// a given uncompressed byte offset. Lines come without their newline, each
// with the offset just past it, so a caller can commit "read up to here".
// A line is bounded: one longer than max_line_bytes is reported once as
// too long and its bytes are skipped up to its newline without being held
// (memory stays near max_line_bytes + 1 MiB whatever the file holds). An
// offset inside such a line (where the reader stopped at the end of the
// file) is a valid place to resume: the rest of that line is skipped.
// An unterminated last line is held back until more arrives; finish()
// tells whether there is one. A stream (standard input: a pipe from
// `docker logs -f`, `zcat`, `ssh mx tail -F`) is read as plain text as it
// comes: next() says none when nothing arrived for a moment, and at_end()
// once the writer closed it; seek() reads forward and drops what it
// passes. Not thread-safe.
#pragma once

#include <sys/types.h>
#include <zlib.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "result.h"

namespace smtpscope::ingest {

class LogReader {
 public:
  static Result<std::unique_ptr<LogReader>> open(const std::string& path,
                                                 std::size_t max_line_bytes);
  // Reads the stream on fd (not owned, not closed).
  static std::unique_ptr<LogReader> open_stream(int fd, std::size_t max_line_bytes);
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  // The first line (at most 4 KiB, or max_line_bytes if less), which
  // identifies the file; leaves the reader at offset 0.
  Result<std::string> first_line();
  // Positions the reader at `offset`; false if the file ends before it.
  Result<bool> seek(std::int64_t offset);

  enum class Next {
    line,      // `line` is valid until the next call
    too_long,  // a line longer than max_line_bytes: skipped (the rest of it too)
    none,      // no complete line for now
  };
  // On line and too_long, `end_offset` is the offset after what was consumed.
  Result<Next> next(std::string_view& line, std::int64_t& end_offset);
  // After next() returned none: the unterminated rest, if any (for a file
  // known to be complete). Consumes it.
  bool finish(std::string_view& line, std::int64_t& end_offset);

  // A gzip file whose data ended before the end of its stream (cut short:
  // `gzip -t` says "unexpected end of file"), seen when next() returned none.
  bool cut_short() const { return cut_short_; }
  // A stream whose writer has closed it: nothing more will come.
  bool at_end() const { return at_end_; }
  bool stream() const { return stream_fd_ >= 0; }

  // Whether `path` still names the file read so far, unchanged where read.
  enum class Identity {
    same,
    replaced,   // another file (rotated), or none yet
    rewritten,  // the same file, truncated (and maybe written again past the offset)
  };
  // The same inode and, for plain files, at least offset() bytes long,
  // starting with the same first line and holding the same bytes just
  // before offset(). Reads a few bytes of the file.
  Identity identity(const std::string& path) const;

  std::int64_t offset() const { return consumed_; }  // bytes handed out as lines
  ino_t inode() const { return inode_; }
  bool compressed() const { return compressed_; }

 private:
  LogReader(gzFile file, ino_t inode, bool compressed, std::size_t max_line_bytes)
      : file_(file), inode_(inode), compressed_(compressed), max_line_bytes_(max_line_bytes) {}
  Result<bool> fill();
  Result<bool> fill_from_stream();
  Result<bool> skip_stream_to(std::int64_t offset);
  std::string recent_bytes() const;

  gzFile file_;
  ino_t inode_;
  bool compressed_;
  std::size_t max_line_bytes_;
  std::string buffer_;
  std::size_t start_ = 0;        // first unconsumed byte of buffer_
  std::int64_t consumed_ = 0;    // uncompressed offset of buffer_[start_]
  bool skipping_ = false;        // inside a too-long line, up to its newline
  bool cut_short_ = false;
  int stream_fd_ = -1;           // >= 0: a stream, read with read(2), file_ unused
  bool at_end_ = false;
  std::string first_line_;       // as first_line() returned it
  std::string tail_;             // bytes consumed before buffer_ (at most 256)
};

}  // namespace smtpscope::ingest
