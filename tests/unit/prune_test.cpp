#include "prune.h"

#include <gtest/gtest.h>

#include "stored_analysis.h"
#include "test_support.h"

namespace smtpscope::cli {
namespace {

class PruneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = smtpscope::testing::migrated_memory_database();
    ASSERT_NE(db_, nullptr);
    // Sessions 1..7 began at 1000 s .. 7000 s, each with a transaction, two
    // events and its analysis; one outbound record and one drop count each.
    for (int i = 1; i <= 7; ++i) {
      const auto t = std::to_string(i * 1'000'000'000LL);
      const auto id = std::to_string(i);
      exec("INSERT INTO sessions (id, stream, connect_us) VALUES (" + id + ", 's', " + t + ")");
      exec("INSERT INTO transactions (session_id, seq, started_us) VALUES (" + id + ", 1, " + t +
           ")");
      for (const char* stage : {"connect", "close"}) {
        exec("INSERT INTO events (session_id, source, stage, time_us) VALUES (" + id +
             ", 'milter', '" + stage + "', " + t + ")");
      }
      exec("INSERT INTO remote_events (time_us, server_addr, kind) VALUES (" + t + ", 'x', 'lost')");
      exec("INSERT INTO drops (time_us, source, dropped) VALUES (" + t + ", 'milter', 1)");
    }
    auto rules = analysis::load_rules("");
    ASSERT_TRUE(rules);
    auto analysed = analysis::analyse_pending(*db_, rules.value(), true);
    ASSERT_TRUE(analysed) << analysed.message();
    ASSERT_EQ(analysed.value(), 7);
  }

  void exec(const std::string& sql) { ASSERT_TRUE(db_->exec(sql)) << sql; }

  std::int64_t count(const std::string& sql) {
    auto q = db_->prepare(sql);
    EXPECT_TRUE(q);
    EXPECT_TRUE(q.value().step().value());
    return q.value().column_int(0);
  }

  std::unique_ptr<sqlite::Database> db_;
};

TEST_F(PruneTest, RemovesWhatIsOlderAndEverythingThatBelongsToIt) {
  // Chunks of 2 sessions: the loop has to go round three times for 5.
  auto pruned = prune_older_than(*db_, 5'500'000'000LL, 2);
  ASSERT_TRUE(pruned) << pruned.message();
  EXPECT_EQ(pruned.value().sessions, 5);
  EXPECT_EQ(pruned.value().transactions, 5);
  EXPECT_EQ(pruned.value().events, 10);
  EXPECT_EQ(pruned.value().remote_events, 5);
  EXPECT_EQ(pruned.value().drops, 5);
  EXPECT_EQ(count("SELECT count(*) FROM sessions WHERE id IN (6, 7)"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM sessions"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM transactions"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM events WHERE session_id IN (6, 7)"), 4);
  EXPECT_EQ(count("SELECT count(*) FROM events"), 4);
  EXPECT_EQ(count("SELECT count(*) FROM session_analysis"), 2);
  // The per-client counts follow the analysis rows they count.
  EXPECT_EQ(count("SELECT sum(sessions) FROM client_day_shapes"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM remote_events"), 2);
  EXPECT_EQ(count("SELECT count(*) FROM drops"), 2);
}

TEST_F(PruneTest, NothingOlderMeansNothingRemoved) {
  auto pruned = prune_older_than(*db_, 1'000'000'000LL);
  ASSERT_TRUE(pruned) << pruned.message();
  EXPECT_EQ(pruned.value().sessions, 0);
  EXPECT_EQ(count("SELECT count(*) FROM events"), 14);
}

}  // namespace
}  // namespace smtpscope::cli
