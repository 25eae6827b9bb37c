#include "log_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "test_support.h"

namespace smtpscope::ingest {
namespace {

using testing::TempDir;

void write_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
}

void append_file(const std::string& path, const std::string& content) {
  std::ofstream(path, std::ios::binary | std::ios::app) << content;
}

std::string gzip(const std::string& content) {
  z_stream stream{};
  EXPECT_EQ(deflateInit2(&stream, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY), Z_OK);
  std::string out(deflateBound(&stream, content.size()) + 64, '\0');
  stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(content.data()));
  stream.avail_in = static_cast<uInt>(content.size());
  stream.next_out = reinterpret_cast<Bytef*>(out.data());
  stream.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&stream, Z_FINISH), Z_STREAM_END);
  out.resize(stream.total_out);
  deflateEnd(&stream);
  return out;
}

// What next() yields until none: a line's text, or "<too long>", each with its end offset.
struct Read {
  std::vector<std::string> items;
  std::vector<std::int64_t> ends;
};

Read read_all(LogReader& reader) {
  Read out;
  std::string_view line;
  std::int64_t end = 0;
  for (;;) {
    auto got = reader.next(line, end);
    EXPECT_TRUE(got) << got.message();
    if (!got || got.value() == LogReader::Next::none) return out;
    out.items.push_back(got.value() == LogReader::Next::line ? std::string(line) : "<too long>");
    out.ends.push_back(end);
  }
}

std::unique_ptr<LogReader> open_reader(const std::string& path, std::size_t max_line_bytes) {
  auto reader = LogReader::open(path, max_line_bytes);
  EXPECT_TRUE(reader) << reader.message();
  auto first = reader.value()->first_line();
  EXPECT_TRUE(first) << first.message();
  return std::move(reader).value();
}

TEST(LogReader, LinesUpToTheLimitPassLongerOnesAreSkippedWhole) {
  TempDir dir;
  constexpr std::size_t limit = 1024;
  const std::string at_limit(limit, 'b');
  write_file(dir.file("log"), "first\n" + std::string(limit - 1, 'a') + "\n" + at_limit + "\n" +
                                  std::string(limit + 1, 'c') + "\n" +
                                  std::string(5 * limit + 3, 'd') + "\nlast\n");
  auto reader = open_reader(dir.file("log"), limit);
  const Read read = read_all(*reader);
  EXPECT_EQ(read.items, (std::vector<std::string>{"first", std::string(limit - 1, 'a'), at_limit,
                                                  "<too long>", "<too long>", "last"}));
  const std::int64_t after_c = 6 + limit + (limit + 1) + (limit + 2);
  EXPECT_EQ(read.ends[3], after_c);  // past the long line's newline: resume after it
  EXPECT_EQ(read.ends[4], after_c + 5 * limit + 4);
}

TEST(LogReader, AnUnterminatedLongLineIsSkippedToTheEndAndStaysSkippedOnResume) {
  TempDir dir;
  constexpr std::size_t limit = 1024;
  const std::string path = dir.file("log");
  write_file(path, "first\n" + std::string(3 * 1024 * 1024, 'x'));  // more than one read
  auto reader = open_reader(path, limit);
  Read read = read_all(*reader);
  EXPECT_EQ(read.items, (std::vector<std::string>{"first", "<too long>"}));
  const std::int64_t stopped = reader->offset();
  EXPECT_EQ(stopped, 6 + 3 * 1024 * 1024);  // nothing held back
  std::string_view rest;
  std::int64_t end = 0;
  EXPECT_FALSE(reader->finish(rest, end));

  // The line ends later; a new run resumes inside it and skips the rest silently.
  append_file(path, "yyyy\nnext\n");
  auto resumed = open_reader(path, limit);
  auto sought = resumed->seek(stopped);
  ASSERT_TRUE(sought && sought.value());
  read = read_all(*resumed);
  EXPECT_EQ(read.items, (std::vector<std::string>{"next"}));
  // At a line start nothing is skipped.
  auto at_line = open_reader(path, limit);
  ASSERT_TRUE(at_line->seek(6).value());
  EXPECT_EQ(read_all(*at_line).items.size(), 2u);  // the long line, then "next"
  // Past the end: false (the file is not the one the offset was taken in).
  auto beyond = open_reader(path, limit);
  auto past = beyond->seek(stopped + 1000);
  ASSERT_TRUE(past);
  EXPECT_FALSE(past.value());
}

TEST(LogReader, AGzipCutShortKeepsItsCompleteLinesAndSaysSo) {
  TempDir dir;
  std::string content;
  for (int i = 0; i < 2000; ++i) content += "line " + std::to_string(i) + " of the log\n";
  const std::string whole = gzip(content);
  write_file(dir.file("whole.gz"), whole);
  write_file(dir.file("cut.gz"), whole.substr(0, whole.size() / 2));
  auto complete = open_reader(dir.file("whole.gz"), 65536);
  EXPECT_EQ(read_all(*complete).items.size(), 2000u);
  EXPECT_FALSE(complete->cut_short());
  auto cut = open_reader(dir.file("cut.gz"), 65536);
  const Read read = read_all(*cut);
  EXPECT_GT(read.items.size(), 0u);
  EXPECT_LT(read.items.size(), 2000u);
  EXPECT_EQ(read.items.back(), "line " + std::to_string(read.items.size() - 1) + " of the log");
  EXPECT_TRUE(cut->cut_short());
}

TEST(LogReader, IdentitySeesATruncationEvenWhenTheFileGrewPastTheOffsetAgain) {
  TempDir dir;
  const std::string path = dir.file("log");
  write_file(path, "Nov 1 first line\nsecond line\n");
  auto reader = open_reader(path, 65536);
  EXPECT_EQ(read_all(*reader).items.size(), 2u);
  EXPECT_EQ(reader->identity(path), LogReader::Identity::same);
  append_file(path, "third line\n");  // growing is no change
  EXPECT_EQ(reader->identity(path), LogReader::Identity::same);
  EXPECT_EQ(read_all(*reader).items.size(), 1u);

  // Truncated and written again, longer than before, with the same first line.
  std::string again = "Nov 1 first line\n";
  for (int i = 0; i < 50; ++i) again += "new line " + std::to_string(i) + "\n";
  std::filesystem::resize_file(path, 0);
  append_file(path, again);
  EXPECT_EQ(reader->identity(path), LogReader::Identity::rewritten);
  // With another first line, too.
  write_file(path, "Nov 2 other first line\n" + again);
  EXPECT_EQ(reader->identity(path), LogReader::Identity::rewritten);
  // Shorter than what was read.
  write_file(path, "Nov 1 first line\n");
  EXPECT_EQ(reader->identity(path), LogReader::Identity::rewritten);
  // Another file under the name (rotation).
  std::filesystem::rename(path, path + ".1");
  write_file(path, "Nov 1 first line\nsecond line\nthird line\n");
  EXPECT_EQ(reader->identity(path), LogReader::Identity::replaced);
}

}  // namespace
}  // namespace smtpscope::ingest

namespace smtpscope::ingest {
namespace {

// A stream (standard input): lines as they come, "none" while the writer
// pauses, the same first line as a file would give, a resume that drops
// the bytes read before, and the end when the writer closes it.
TEST(LogReader, AStreamIsReadAsItComesAndEndsWhenClosed) {
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::string text = "first line\nsecond\nthird, unterminated";
  ASSERT_EQ(::write(fds[1], text.data(), 18), 18);  // up to "second\n"
  auto reader = LogReader::open_stream(fds[0], 1000);
  auto first = reader->first_line();
  ASSERT_TRUE(first);
  EXPECT_EQ(first.value(), "first line");
  auto sought = reader->seek(11);  // an earlier run read "first line\n"
  ASSERT_TRUE(sought && sought.value());
  std::string_view line;
  std::int64_t end = 0;
  auto got = reader->next(line, end);
  ASSERT_TRUE(got);
  ASSERT_EQ(got.value(), LogReader::Next::line);
  EXPECT_EQ(line, "second");
  EXPECT_EQ(end, 18);
  got = reader->next(line, end);  // the writer pauses
  ASSERT_TRUE(got);
  EXPECT_EQ(got.value(), LogReader::Next::none);
  EXPECT_FALSE(reader->at_end());
  ASSERT_EQ(::write(fds[1], text.data() + 18, text.size() - 18),
            static_cast<ssize_t>(text.size() - 18));
  ::close(fds[1]);
  got = reader->next(line, end);
  ASSERT_TRUE(got);
  EXPECT_EQ(got.value(), LogReader::Next::none);
  EXPECT_TRUE(reader->at_end());
  ASSERT_TRUE(reader->finish(line, end));
  EXPECT_EQ(line, "third, unterminated");
  EXPECT_EQ(reader->identity("/nonexistent"), LogReader::Identity::same);
  ::close(fds[0]);
}

}  // namespace
}  // namespace smtpscope::ingest
