#include "log_reader.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace smtpscope::ingest {
namespace {

constexpr std::size_t read_size = 1 << 20;
constexpr std::size_t max_first_line = 4096;
constexpr std::size_t kept_tail = 256;  // bytes before the offset compared by identity()
constexpr int stream_pause_ms = 500;     // a stream silent this long: "none for now"

// Reads exactly `size` bytes at `offset`; false on a short file or an error.
bool read_at(int fd, char* out, std::size_t size, off_t offset) {
  while (size > 0) {
    const ssize_t n = ::pread(fd, out, size, offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    out += n;
    size -= static_cast<std::size_t>(n);
    offset += n;
  }
  return true;
}

bool same_bytes_at(int fd, std::string_view expected, off_t offset) {
  std::string found(expected.size(), '\0');
  return read_at(fd, found.data(), found.size(), offset) && found == expected;
}

}  // namespace

Result<std::unique_ptr<LogReader>> LogReader::open(const std::string& path,
                                                   std::size_t max_line_bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::error(path + ": " + std::strerror(errno));
  struct stat info{};
  unsigned char magic[2] = {0, 0};
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    ::close(fd);
    return Status::error(path + ": not a regular file");
  }
  const bool compressed = ::pread(fd, magic, 2, 0) == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  gzFile file = gzdopen(fd, "rb");
  if (file == nullptr) {
    ::close(fd);
    return Status::error(path + ": cannot read");
  }
  gzbuffer(file, 256 * 1024);
  return std::unique_ptr<LogReader>(
      new LogReader(file, info.st_ino, compressed, std::max<std::size_t>(max_line_bytes, 1)));
}

std::unique_ptr<LogReader> LogReader::open_stream(int fd, std::size_t max_line_bytes) {
  auto reader = std::unique_ptr<LogReader>(
      new LogReader(nullptr, 0, false, std::max<std::size_t>(max_line_bytes, 1)));
  reader->stream_fd_ = fd;
  return reader;
}

LogReader::~LogReader() {
  if (file_ != nullptr) gzclose(file_);
}

// What the stream has now (one read(2)), after waiting a moment for it.
Result<bool> LogReader::fill_from_stream() {
  if (at_end_) return false;
  struct pollfd ready{stream_fd_, POLLIN, 0};
  const int polled = ::poll(&ready, 1, stream_pause_ms);
  if (polled < 0 && errno != EINTR) return Status::error(std::string("poll: ") + std::strerror(errno));
  if (polled <= 0) return false;  // silent for now, or a signal
  const std::size_t old_size = buffer_.size();
  buffer_.resize(old_size + read_size);
  const ssize_t n = ::read(stream_fd_, buffer_.data() + old_size, read_size);
  buffer_.resize(old_size + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  if (n < 0) {
    if (errno == EINTR || errno == EAGAIN) return false;
    return Status::error(std::string("read: ") + std::strerror(errno));
  }
  if (n == 0) at_end_ = true;
  return n > 0;
}

// Drops the stream's bytes up to `offset` (what an earlier run read).
Result<bool> LogReader::skip_stream_to(std::int64_t offset) {
  while (consumed_ < offset) {
    if (start_ >= buffer_.size()) {
      auto more = fill();
      if (!more) return more.status();
      if (!more.value() && at_end_) return false;
      continue;
    }
    const std::size_t take =
        std::min<std::size_t>(buffer_.size() - start_, static_cast<std::size_t>(offset - consumed_));
    start_ += take;
    consumed_ += static_cast<std::int64_t>(take);
  }
  skipping_ = start_ > 0 && buffer_[start_ - 1] != '\n';
  return true;
}

std::string LogReader::recent_bytes() const {
  const std::size_t from_buffer = std::min(start_, kept_tail);
  const std::size_t from_tail = std::min(tail_.size(), kept_tail - from_buffer);
  std::string recent = tail_.substr(tail_.size() - from_tail);
  recent.append(buffer_, start_ - from_buffer, from_buffer);
  return recent;
}

Result<bool> LogReader::fill() {
  if (start_ > 0) {
    tail_ = recent_bytes();
    buffer_.erase(0, start_);
    start_ = 0;
  }
  if (stream()) return fill_from_stream();
  const std::size_t old_size = buffer_.size();
  buffer_.resize(old_size + read_size);
  const int n = gzread(file_, buffer_.data() + old_size, static_cast<unsigned>(read_size));
  if (n < 0) {
    int code = 0;
    const char* message = gzerror(file_, &code);
    buffer_.resize(old_size);
    return Status::error(std::string("read: ") + (message ? message : "error"));
  }
  buffer_.resize(old_size + static_cast<std::size_t>(n));
  if (n == 0) {
    // zlib reports a stream that stops before its end (a cut .gz) as
    // Z_BUF_ERROR and lets reading go on, as for a file still being written.
    int code = Z_OK;
    (void)gzerror(file_, &code);
    if (compressed_ && code == Z_BUF_ERROR) cut_short_ = true;
    gzclearerr(file_);  // at EOF for now; a growing file may have more later
  }
  return n > 0;
}

Result<LogReader::Next> LogReader::next(std::string_view& line, std::int64_t& end_offset) {
  for (;;) {
    const std::size_t newline = buffer_.find('\n', start_);
    const std::size_t stop = newline == std::string::npos ? buffer_.size() : newline + 1;
    if (skipping_ || stop - start_ > max_line_bytes_ + (newline == std::string::npos ? 0 : 1)) {
      // A too-long line: hand out nothing of it, hold none of it.
      const bool first_sight = !skipping_;
      consumed_ += static_cast<std::int64_t>(stop - start_);
      start_ = stop;
      skipping_ = newline == std::string::npos;
      end_offset = consumed_;
      if (first_sight) return Next::too_long;
      if (!skipping_) continue;
    } else if (newline != std::string::npos) {
      line = std::string_view(buffer_).substr(start_, newline - start_);
      consumed_ += static_cast<std::int64_t>(stop - start_);
      start_ = stop;
      end_offset = consumed_;
      return Next::line;
    }
    auto more = fill();
    if (!more) return more.status();
    if (!more.value()) return Next::none;
  }
}

bool LogReader::finish(std::string_view& line, std::int64_t& end_offset) {
  if (start_ >= buffer_.size()) return false;
  line = std::string_view(buffer_).substr(start_);
  consumed_ += static_cast<std::int64_t>(buffer_.size() - start_);
  start_ = buffer_.size();
  end_offset = consumed_;
  return true;
}

Result<std::string> LogReader::first_line() {
  if (stream()) {  // what a file would give: read ahead, nothing consumed
    const std::size_t limit = std::min(max_first_line, max_line_bytes_);
    while (buffer_.find('\n') == std::string::npos && buffer_.size() < limit && !at_end_) {
      auto more = fill();
      if (!more) return more.status();
    }
    const std::size_t newline = buffer_.find('\n');
    first_line_ = newline == std::string::npos ? std::string() : buffer_.substr(0, std::min(newline, limit));
    if (newline == std::string::npos && buffer_.size() >= limit) first_line_ = buffer_.substr(0, limit);
    return first_line_;
  }
  std::string head(std::min(max_first_line, max_line_bytes_), '\0');
  gzrewind(file_);
  const int n = gzread(file_, head.data(), static_cast<unsigned>(head.size()));
  if (n < 0) return Status::error("cannot read the first line");
  head.resize(static_cast<std::size_t>(n));
  gzrewind(file_);
  buffer_.clear();
  start_ = 0;
  consumed_ = 0;
  skipping_ = false;
  tail_.clear();
  first_line_ = head.substr(0, head.find('\n'));
  return first_line_;
}

Result<bool> LogReader::seek(std::int64_t offset) {
  if (stream()) return skip_stream_to(offset);
  buffer_.clear();
  start_ = 0;
  tail_.clear();
  skipping_ = false;
  const std::int64_t before = offset > 0 ? offset - 1 : 0;
  if (gzseek(file_, static_cast<z_off_t>(before), SEEK_SET) != static_cast<z_off_t>(before)) {
    return Status::error("cannot seek to byte " + std::to_string(offset));
  }
  consumed_ = before;
  if (offset > 0) {
    // The byte before says whether the offset is inside a line: the rest
    // of a too-long line, skipped before, which stays skipped.
    char previous = 0;
    const int n = gzread(file_, &previous, 1);
    if (n < 0) return Status::error("cannot read byte " + std::to_string(before));
    gzclearerr(file_);
    if (n == 0) return false;
    consumed_ = offset;
    tail_.assign(1, previous);
    skipping_ = previous != '\n';
  }
  return true;
}

LogReader::Identity LogReader::identity(const std::string& path) const {
  if (stream()) return Identity::same;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Identity::same;  // mid-rotation: look again later
  struct stat info{};
  Identity result = Identity::same;
  if (::fstat(fd, &info) != 0) {
    result = Identity::same;
  } else if (info.st_ino != inode_) {
    result = Identity::replaced;
  } else if (!compressed_) {
    const std::string recent = recent_bytes();
    const bool unchanged =
        info.st_size >= consumed_ &&
        (consumed_ == 0 || same_bytes_at(fd, first_line_, 0)) &&
        same_bytes_at(fd, recent, static_cast<off_t>(consumed_) -
                                      static_cast<off_t>(recent.size()));
    if (!unchanged) result = Identity::rewritten;
  }
  ::close(fd);
  return result;
}

}  // namespace smtpscope::ingest
