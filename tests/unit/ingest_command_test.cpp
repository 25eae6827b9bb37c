#include "ingest_command.h"

#include <gtest/gtest.h>

#include <ctime>
#include <fstream>
#include <string>

#include "sqlite.h"
#include "stored_analysis.h"
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

// Every stored conclusion but when it was made, as text to compare.
std::string conclusions(const std::string& db_path) {
  auto db = sqlite::Database::open(db_path, false, 5000);
  EXPECT_TRUE(db) << db.message();
  if (!db) return "";
  return testing::rows_as_text(
      *db.value(),
      {{"SELECT session_id, client_addr, host, connect_us, stages, pattern, patterns,"
        " fingerprint, helo_quirks, transactions, aborted, delivered, local FROM"
        " session_analysis ORDER BY session_id", 13},
       {"SELECT * FROM client_day_shapes ORDER BY 1, 2, 3, 4, 5, 6", 10},
       {"SELECT * FROM client_timing ORDER BY 1", 6},
       {"SELECT * FROM fingerprints ORDER BY 1", 2}});
}

// The analysis beside the reading (passes while batches are committed, the
// rest at the end) stores what one pass after the whole log does: a real
// log of 22,210 lines (two batches), most of it one client's 3,440 sessions.
TEST(IngestCommand, TheAnalysisBesideTheReadingConcludesWhatOnePassAtTheEndWould) {
  TempDir dir;
  const std::string log =
      std::string(SMTPSCOPE_SOURCE_DIR) + "/tests/fixtures/logs/real/mchirico-blockbadip-mail.log.gz";
  IngestCommand beside;
  beside.files = {log};
  beside.quiet = true;
  beside.database = dir.file("beside.db");
  beside.config_path = dir.file("none.yaml");  // the defaults: analysis on
  ASSERT_EQ(run_ingest(beside), 0);

  std::ofstream(dir.file("off.yaml")) << "analysis:\n  interval_ms: 0\n";
  IngestCommand after = beside;
  after.database = dir.file("after.db");
  after.config_path = dir.file("off.yaml");
  ASSERT_EQ(run_ingest(after), 0);
  {
    auto db = sqlite::Database::open(after.database, false, 5000);
    ASSERT_TRUE(db) << db.message();
    auto rules = analysis::load_rules("");
    ASSERT_TRUE(rules) << rules.message();
    auto once = analysis::analyse_pending(*db.value(), rules.value(), false);
    ASSERT_TRUE(once) << once.message();
    EXPECT_GT(once.value(), 3000);
  }
  const std::string expected = conclusions(after.database);
  EXPECT_FALSE(expected.empty());
  EXPECT_TRUE(conclusions(beside.database) == expected) << "the stored analysis differs";
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
