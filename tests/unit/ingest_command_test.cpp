#include "ingest_command.h"

#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <string>

#include "sqlite.h"
#include "test_support.h"

namespace smtpscope::cli {
namespace {

using testing::TempDir;

// A connect line of exactly `length` bytes (without its newline).
std::string connect_line(std::size_t length, int n) {
  const std::time_t an_hour_ago = std::time(nullptr) - 3600;
  std::tm local{};
  localtime_r(&an_hour_ago, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%b %d %H:%M:%S", &local);
  const std::string head = std::string(stamp) + " mx postfix/smtpd[7]: connect from ";
  const std::string tail = "[192.0.2." + std::to_string(n) + "]:25";
  return head + std::string(length - head.size() - tail.size(), 'a') + tail;
}

std::int64_t sessions(const std::string& db_path) {
  auto db = sqlite::Database::open(db_path, false, 5000);
  EXPECT_TRUE(db) << db.message();
  auto q = db.value()->prepare("SELECT count(*) FROM sessions");
  EXPECT_TRUE(q && q.value().step().value());
  return q.value().column_int(0);
}

TEST(IngestCommand, TheLineBoundComesFromTheConfiguration) {
  TempDir dir;
  std::ofstream(dir.file("smtpscope.yaml")) << "ingest:\n  max_line_bytes: 2048\n";
  std::ofstream(dir.file("mail.log")) << connect_line(2047, 1) << '\n'
                                      << connect_line(2048, 2) << '\n'
                                      << connect_line(2049, 3) << '\n';
  IngestCommand command;
  command.files = {dir.file("mail.log")};
  command.quiet = true;
  command.database = dir.file("smtpscope.db");
  command.config_path = dir.file("smtpscope.yaml");
  EXPECT_EQ(run_ingest(command), 0);
  EXPECT_EQ(sessions(command.database), 2);  // the 2049-byte line is skipped

  command.database = dir.file("default.db");  // no file: the default bound, 65536
  command.config_path = dir.file("none.yaml");
  EXPECT_EQ(run_ingest(command), 0);
  EXPECT_EQ(sessions(command.database), 3);
}

TEST(IngestCommand, ABadConfigurationIsAUsageError) {
  TempDir dir;
  std::ofstream(dir.file("smtpscope.yaml")) << "ingest:\n  max_line_bytes: 10\n";  // < 1024
  std::ofstream(dir.file("mail.log")) << connect_line(200, 1) << '\n';
  IngestCommand command;
  command.files = {dir.file("mail.log")};
  command.quiet = true;
  command.database = dir.file("smtpscope.db");
  command.config_path = dir.file("smtpscope.yaml");
  EXPECT_EQ(run_ingest(command), 2);
}

}  // namespace
}  // namespace smtpscope::cli
