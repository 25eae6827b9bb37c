#include "log_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace smtpscope::ingest {
namespace {

constexpr std::size_t read_size = 1 << 20;
constexpr std::size_t max_first_line = 4096;

}  // namespace

Result<std::unique_ptr<LogReader>> LogReader::open(const std::string& path) {
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
  return std::unique_ptr<LogReader>(new LogReader(file, info.st_ino, compressed));
}

LogReader::~LogReader() { gzclose(file_); }

Result<bool> LogReader::fill() {
  if (start_ > 0) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
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
  if (n == 0) gzclearerr(file_);  // at EOF for now; a growing file may have more later
  return n > 0;
}

Result<bool> LogReader::next(std::string_view& line, std::int64_t& end_offset) {
  for (;;) {
    const std::size_t newline = buffer_.find('\n', start_);
    if (newline != std::string::npos) {
      line = std::string_view(buffer_).substr(start_, newline - start_);
      consumed_ += static_cast<std::int64_t>(newline + 1 - start_);
      start_ = newline + 1;
      end_offset = consumed_;
      return true;
    }
    auto more = fill();
    if (!more) return more.status();
    if (!more.value()) return false;
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
  std::string head(max_first_line, '\0');
  gzrewind(file_);
  const int n = gzread(file_, head.data(), static_cast<unsigned>(head.size()));
  if (n < 0) return Status::error("cannot read the first line");
  head.resize(static_cast<std::size_t>(n));
  gzrewind(file_);
  buffer_.clear();
  start_ = 0;
  consumed_ = 0;
  return head.substr(0, head.find('\n'));
}

Status LogReader::seek(std::int64_t offset) {
  buffer_.clear();
  start_ = 0;
  if (gzseek(file_, static_cast<z_off_t>(offset), SEEK_SET) != static_cast<z_off_t>(offset)) {
    return Status::error("cannot seek to byte " + std::to_string(offset));
  }
  consumed_ = offset;
  return Status::ok();
}

}  // namespace smtpscope::ingest
