// Reads a log file as lines: plain text or gzip (detected by content), from
// a given uncompressed byte offset. Lines come without their newline, each
// with the offset just past it, so a caller can commit "read up to here".
// An unterminated last line is held back until more arrives; finish()
// tells whether there is one. Not thread-safe.
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
  static Result<std::unique_ptr<LogReader>> open(const std::string& path);
  ~LogReader();
  LogReader(const LogReader&) = delete;
  LogReader& operator=(const LogReader&) = delete;

  // The first line (at most 4 KiB), which identifies the file; leaves the
  // reader at offset 0.
  Result<std::string> first_line();
  Status seek(std::int64_t offset);

  // The next complete line, or false when no complete line is buffered and
  // the file has nothing more for now. On true, `line` is valid until the
  // next call and `end_offset` is the offset just past its newline.
  Result<bool> next(std::string_view& line, std::int64_t& end_offset);
  // After next() returned false: the unterminated rest, if any (for a file
  // known to be complete). Consumes it.
  bool finish(std::string_view& line, std::int64_t& end_offset);

  std::int64_t offset() const { return consumed_; }  // bytes handed out as lines
  ino_t inode() const { return inode_; }
  bool compressed() const { return compressed_; }

 private:
  LogReader(gzFile file, ino_t inode, bool compressed)
      : file_(file), inode_(inode), compressed_(compressed) {}
  Result<bool> fill();

  gzFile file_;
  ino_t inode_;
  bool compressed_;
  std::string buffer_;
  std::size_t start_ = 0;        // first unconsumed byte of buffer_
  std::int64_t consumed_ = 0;    // uncompressed offset of buffer_[start_]
};

}  // namespace smtpscope::ingest
