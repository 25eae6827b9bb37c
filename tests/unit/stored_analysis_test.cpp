// The analysis stored once per session and the per-client counts kept from
// it (schema 8): counted once however often a session is analysed, late
// evidence re-analyses only what it touches, open sessions wait for their
// end, other patterns make it stale, and the population read from the
// counts scores clients exactly as analysing every session in memory does.
#include "stored_analysis.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "client_population.h"
#include "client_report.h"
#include "test_support.h"

namespace smtpscope::analysis {
namespace {

constexpr std::int64_t second = 1'000'000;
constexpr std::int64_t t0 = 1'790'000'000LL * second;

class StoredAnalysisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_ = smtpscope::testing::migrated_memory_database();
    ASSERT_NE(db_, nullptr);
    auto rules = load_rules("");
    ASSERT_TRUE(rules) << rules.message();
    rules_ = std::move(rules).value();
  }

  void exec(const std::string& sql) { ASSERT_TRUE(db_->exec(sql)) << sql; }

  std::int64_t count(const std::string& sql) {
    auto q = db_->prepare(sql);
    EXPECT_TRUE(q) << sql;
    if (!q) return -1;
    auto row = q.value().step();
    EXPECT_TRUE(row && row.value()) << sql;
    return q.value().column_int(0);
  }

  std::string text(const std::string& sql) {
    auto q = db_->prepare(sql);
    EXPECT_TRUE(q) << sql;
    if (!q) return "";
    auto row = q.value().step();
    EXPECT_TRUE(row && row.value()) << sql;
    return q.value().column_text(0);
  }

  // A milter session: connect, HELO, then per transaction MAIL, RCPT and
  // either DATA + end of message or an abort; closed unless `open`.
  void session(int id, const std::string& client, std::int64_t at, std::vector<bool> delivered,
               bool open = false) {
    const std::string sid = std::to_string(id);
    exec("INSERT INTO sessions (id, stream, client_addr, client_port, connect_us, close_us, helo,"
         " helo_count, transactions) VALUES (" + sid + ", 'milter:1:" + sid + "', '" + client +
         "', 40000, " + std::to_string(at) + ", NULL, 'mx.example.net', 1, " + std::to_string(delivered.size()) + ")");
    std::int64_t t = at;
    auto event = [&](const std::string& stage, const std::string& tid, const std::string& arg) {
      t += 100'000;
      exec("INSERT INTO events (session_id, transaction_id, source, stage, time_us, argument,"
           " attributes) VALUES (" + sid + ", " + tid + ", 'milter', '" + stage + "', " +
           std::to_string(t) + ", '" + arg + "', '{}')");
    };
    event("connect", "NULL", "");
    event("helo", "NULL", "mx.example.net");
    for (std::size_t i = 0; i < delivered.size(); ++i) {
      exec("INSERT INTO transactions (session_id, seq, mail_from, started_us, data_us,"
           " rcpt_accepted, outcome) VALUES (" + sid + ", " + std::to_string(i + 1) +
           ", '<a@example.net>', " + std::to_string(t) + ", " +
           (delivered[i] ? std::to_string(t + 300'000) : "NULL") + ", 1, '" +
           (delivered[i] ? "delivered" : "aborted") + "')");
      const std::string tid = std::to_string(db_->last_insert_rowid());
      event("mail", tid, "<a@example.net>");
      event("rcpt", tid, "<b@example.org>");
      if (delivered[i]) {
        event("data", tid, "");
        event("eom", tid, "");
      } else {
        event("abort", tid, "");
        t += 3 * second;
      }
    }
    if (open) return;
    event("close", "NULL", "");
    exec("UPDATE sessions SET close_us = " + std::to_string(t) + " WHERE id = " + sid);
  }

  // client_day_shapes holds exactly the GROUP BY of session_analysis.
  void expect_counts_match_rows() {
    EXPECT_EQ(count("SELECT count(*) FROM (SELECT client_addr, host, connect_us / 86400000000 AS d,"
                    " fingerprint, patterns, helo_quirks, count(*) AS n FROM session_analysis"
                    " GROUP BY 1, 2, 3, 4, 5, 6 EXCEPT SELECT client_addr, host, day, fingerprint,"
                    " patterns, helo_quirks, sessions FROM client_day_shapes)"),
              0);
    EXPECT_EQ(count("SELECT coalesce(sum(sessions), 0) FROM client_day_shapes"),
              count("SELECT count(*) FROM session_analysis"));
  }

  // Every stored conclusion (without when it was made): session_analysis,
  // the day counts and client_timing, as text to compare.
  std::string conclusions() {
    return testing::rows_as_text(
        *db_, {{"SELECT session_id, client_addr, host, connect_us, stages, pattern, patterns,"
                " fingerprint, helo_quirks, transactions, aborted, delivered, local"
                " FROM session_analysis ORDER BY session_id", 13},
               {"SELECT * FROM client_day_shapes ORDER BY 1, 2, 3, 4, 5, 6", 10},
               {"SELECT * FROM client_timing ORDER BY 1", 6}});
  }

  std::unique_ptr<sqlite::Database> db_;
  AnalysisRules rules_;
};

TEST_F(StoredAnalysisTest, ASessionAnalysedTwiceCountsOnce) {
  session(1, "192.0.2.1", t0, {false, true});
  session(2, "192.0.2.1", t0 + 60 * second, {true});
  session(3, "192.0.2.2", t0 + 120 * second, {true});
  auto first = analyse_pending(*db_, rules_, false);
  ASSERT_TRUE(first) << first.message();
  EXPECT_EQ(first.value(), 3);
  auto again = analyse_pending(*db_, rules_, false);
  ASSERT_TRUE(again);
  EXPECT_EQ(again.value(), 0) << "nothing new since";
  auto everything = analyse_stored(*db_, rules_, std::nullopt, {});
  ASSERT_TRUE(everything) << everything.message();
  EXPECT_EQ(everything.value(), 3);
  EXPECT_EQ(count("SELECT sessions FROM client_day_shapes WHERE client_addr = '192.0.2.2'"), 1);
  EXPECT_EQ(text("SELECT pattern FROM session_analysis WHERE session_id = 1"), "intercepting-proxy");
  expect_counts_match_rows();
}

TEST_F(StoredAnalysisTest, LateLogEvidenceReanalysesOnlyTheSessionItTouches) {
  session(1, "192.0.2.1", t0, {true});
  session(2, "192.0.2.2", t0 + second, {true});
  ASSERT_TRUE(analyse_pending(*db_, rules_, false));
  EXPECT_EQ(text("SELECT stages FROM session_analysis WHERE session_id = 1"), "C H M R D E Z");
  const std::int64_t analysed_at = count("SELECT analysed_us FROM session_analysis WHERE session_id = 2");
  // The log's disconnect line arrives after the milter's close.
  exec("INSERT INTO events (session_id, source, stage, time_us, attributes) VALUES (1, 'log',"
       " 'close', " + std::to_string(t0 + 2 * second) +
       ", '{\"ehlo\":\"1\",\"mail\":\"1\",\"rcpt\":\"1\",\"data\":\"1\",\"quit\":\"1\"}')");
  auto late = analyse_pending(*db_, rules_, false);
  ASSERT_TRUE(late) << late.message();
  EXPECT_EQ(late.value(), 1);
  EXPECT_EQ(text("SELECT stages FROM session_analysis WHERE session_id = 1"), "C H M R D E Q");
  EXPECT_EQ(count("SELECT analysed_us FROM session_analysis WHERE session_id = 2"), analysed_at);
  expect_counts_match_rows();
}

TEST_F(StoredAnalysisTest, AnOpenSessionWaitsForItsEndButACommandShowsIt) {
  session(1, "192.0.2.1", t0, {true}, true);
  auto daemon_pass = analyse_pending(*db_, rules_, false);
  ASSERT_TRUE(daemon_pass);
  EXPECT_EQ(daemon_pass.value(), 0);
  EXPECT_EQ(count("SELECT count(*) FROM session_analysis"), 0);
  // The session ends: its close event is new evidence.
  exec("UPDATE sessions SET close_us = " + std::to_string(t0 + 5 * second) + " WHERE id = 1");
  exec("INSERT INTO events (session_id, source, stage, time_us) VALUES (1, 'milter', 'close', " +
       std::to_string(t0 + 5 * second) + ")");
  auto ended = analyse_pending(*db_, rules_, false);
  ASSERT_TRUE(ended);
  EXPECT_EQ(ended.value(), 1);
  // A command shows sessions still open too (and they are counted once
  // when they end later).
  session(2, "192.0.2.1", t0 + 10 * second, {true}, true);
  auto command = analyse_pending(*db_, rules_, true);
  ASSERT_TRUE(command);
  EXPECT_EQ(command.value(), 1);
  expect_counts_match_rows();
}

TEST_F(StoredAnalysisTest, OtherPatternsMakeTheStoredAnalysisStaleUntilAnalysedAgain) {
  session(1, "192.0.2.1", t0, {false, true});
  ASSERT_TRUE(analyse_pending(*db_, rules_, false));
  auto fresh = stale_reason(*db_, rules_);
  ASSERT_TRUE(fresh);
  EXPECT_FALSE(fresh.value());
  smtpscope::testing::TempDir dir;
  const std::string file = dir.file("patterns.yaml");
  std::ofstream(file) << "patterns:\n  - name: any-session\n    title: t\n    stages: 'C'\n"
                         "    explanation: e\n    advice: a\n";
  auto other = load_rules(file);
  ASSERT_TRUE(other) << other.message();
  auto stale = stale_reason(*db_, other.value());
  ASSERT_TRUE(stale);
  ASSERT_TRUE(stale.value());
  EXPECT_NE(stale.value()->find("other patterns"), std::string::npos);
  std::vector<std::pair<std::int64_t, std::int64_t>> progress;
  auto redone = analyse_stored(*db_, other.value(), std::nullopt,
                               [&](std::int64_t done, std::int64_t total) {
                                 progress.emplace_back(done, total);
                               });
  ASSERT_TRUE(redone) << redone.message();
  EXPECT_EQ(text("SELECT pattern FROM session_analysis WHERE session_id = 1"), "any-session");
  ASSERT_FALSE(progress.empty());
  EXPECT_EQ(progress.back(), std::make_pair(std::int64_t{1}, std::int64_t{1}));
  auto now = stale_reason(*db_, other.value());
  ASSERT_TRUE(now);
  EXPECT_FALSE(now.value());
  EXPECT_EQ(count("SELECT count(*) FROM analysis_state WHERE key = 'analyse_cursor'"), 0);
  expect_counts_match_rows();
}

// What `clients` reads (per-client counts) ranks and scores every client
// as analysing all their sessions in memory does.
TEST_F(StoredAnalysisTest, ThePopulationFromCountsScoresAsTheSessionsDo) {
  int id = 0;
  for (int c = 0; c < 12; ++c) {
    const std::string client = "198.51.100." + std::to_string(c + 1);
    for (int s = 0; s < 3 + c % 4; ++s) {
      const bool proxy = c % 5 == 0 || (c == 7 && s == 0);
      ++id;
      session(id, client, t0 + (id * 40 + c) * second,
              proxy ? std::vector<bool>{false, true} : std::vector<bool>{true});
    }
  }
  ASSERT_TRUE(analyse_pending(*db_, rules_, true));
  auto stored = smtpscope::cli::read_population(*db_, rules_.patterns, {});
  ASSERT_TRUE(stored) << stored.message();
  SessionFilter all;
  all.limit = 1000;
  auto sessions = read_sessions(*db_, all);
  ASSERT_TRUE(sessions);
  const auto in_memory =
      smtpscope::cli::by_client(smtpscope::cli::analyse(sessions.value(), rules_.patterns));
  ASSERT_EQ(stored.value().clients.size(), in_memory.size());
  for (std::size_t i = 0; i < in_memory.size(); ++i) {
    const auto& a = stored.value().clients[i];
    const auto& b = in_memory[i];
    EXPECT_EQ(a.client_addr, b.client_addr) << "rank " << i;
    EXPECT_NEAR(a.anomaly.score, b.anomaly.score, 1e-9) << a.client_addr;
    EXPECT_EQ(a.session_count, b.session_count);
    EXPECT_EQ(a.transactions, b.transactions);
    ASSERT_EQ(a.anomaly.reasons.size(), b.anomaly.reasons.size()) << a.client_addr;
    for (std::size_t r = 0; r < a.anomaly.reasons.size(); ++r) {
      EXPECT_EQ(a.anomaly.reasons[r].text, b.anomaly.reasons[r].text);
    }
  }
  EXPECT_EQ(stored.value().sessions, static_cast<std::int64_t>(sessions.value().size()));
  // report --client reads the client alone and the others' shapes: the
  // same score and reasons.
  for (const auto& listed : stored.value().clients) {
    smtpscope::cli::PopulationFilter one;
    one.asked_client = listed.client_addr;
    one.only_asked = true;
    auto alone = smtpscope::cli::read_population(*db_, rules_.patterns, one);
    ASSERT_TRUE(alone) << alone.message();
    ASSERT_EQ(alone.value().clients.size(), 1u);
    const auto& a = alone.value().clients.front();
    EXPECT_EQ(a.client_addr, listed.client_addr);
    EXPECT_NEAR(a.anomaly.score, listed.anomaly.score, 1e-9) << a.client_addr;
    ASSERT_EQ(a.anomaly.reasons.size(), listed.anomaly.reasons.size()) << a.client_addr;
    for (std::size_t r = 0; r < a.anomaly.reasons.size(); ++r) {
      EXPECT_EQ(a.anomaly.reasons[r].text, listed.anomaly.reasons[r].text);
    }
  }
}

// A client's timing counts all its earlier sessions however the sessions
// were grouped into passes: before, a pass that began with a client read
// only its last 200 sessions, while one that met it again carried on over
// all of them (a relay's 5,849 sessions were timed as 1,855 after the
// ingest's second 5,000-session pass).
TEST_F(StoredAnalysisTest, AClientsTimingDoesNotDependOnHowPassesGroupedItsSessions) {
  const int sessions = 260;
  for (int i = 1; i <= sessions; ++i) {
    session(i, "192.0.2.9", t0 + i * 60 * second, {true});
    if (i % 40 == 0) {
      ASSERT_TRUE(analyse_pending(*db_, rules_, false));  // as the daemons do
    }
  }
  ASSERT_TRUE(analyse_pending(*db_, rules_, false));
  EXPECT_EQ(count("SELECT sessions FROM client_timing WHERE client_addr = '192.0.2.9'"), sessions);
  const std::string in_passes = conclusions();
  auto once = analyse_stored(*db_, rules_, std::nullopt, {});  // all in one pass
  ASSERT_TRUE(once) << once.message();
  EXPECT_EQ(conclusions(), in_passes);
}

// A session analysed again (late log evidence) in a pass with a newer
// session of its client: the newer one still counts the sessions between.
TEST_F(StoredAnalysisTest, ASessionAnalysedAgainHidesNoSessionOfItsClient) {
  for (int i = 1; i <= 4; ++i) session(i, "192.0.2.9", t0 + i * 60 * second, {true});
  ASSERT_TRUE(analyse_pending(*db_, rules_, false));
  exec("INSERT INTO events (session_id, source, stage, time_us, attributes) VALUES (1, 'log',"
       " 'close', " + std::to_string(t0 + 61 * second) + ", '{\"quit\":\"1\"}')");
  session(5, "192.0.2.9", t0 + 5 * 60 * second, {true});
  ASSERT_TRUE(analyse_pending(*db_, rules_, false));
  EXPECT_EQ(count("SELECT sessions FROM client_timing WHERE client_addr = '192.0.2.9'"), 5);
  const std::string in_passes = conclusions();
  ASSERT_TRUE(analyse_stored(*db_, rules_, std::nullopt, {}));
  EXPECT_EQ(conclusions(), in_passes);
}

// Sessions of one fingerprint whose later features differ (here the
// mailer, from an X-Mailer header): the fingerprint keeps the least of them whichever session was
// analysed last (it kept the last one written, so the table depended on
// how passes grouped the sessions).
TEST_F(StoredAnalysisTest, AFingerprintsFeaturesDoNotDependOnWhichSessionWasAnalysedLast) {
  session(1, "192.0.2.7", t0, {true});
  session(2, "192.0.2.8", t0 + 60 * second, {true});
  exec("INSERT INTO events (session_id, source, stage, time_us, argument, attributes) VALUES (1,"
       " 'milter', 'header', " + std::to_string(t0 + 150'000) + ", 'X-Mailer: Zz 1', '{}')");
  ASSERT_TRUE(analyse_pending(*db_, rules_, false));
  ASSERT_EQ(count("SELECT count(DISTINCT fingerprint) FROM session_analysis"), 1);
  const std::string features = text("SELECT features FROM fingerprints");
  // Late evidence for one session, then for the other: each is analysed
  // again alone, so each is the last written once.
  for (int id : {1, 2}) {
    exec("INSERT INTO events (session_id, source, stage, time_us, argument, attributes) VALUES (" +
         std::to_string(id) + ", 'milter', 'unknown', " + std::to_string(t0 + 90 * second) +
         ", 'XYZZY', '{}')");
    auto pass = analyse_pending(*db_, rules_, false);
    ASSERT_TRUE(pass) << pass.message();
    EXPECT_EQ(pass.value(), 1);
    EXPECT_EQ(text("SELECT features FROM fingerprints"), features) << "after session " << id;
  }
  EXPECT_NE(features.find("mailer=-"), std::string::npos) << features;  // "-" < "X"
}

// The ingest's passes while it reads (in order): a session waits while an
// earlier session of its client is open, so it is timed with it, as one
// pass at the end would; a pass with nothing new still takes it, and the
// analysis says it is behind until then.
TEST_F(StoredAnalysisTest, InOrderPassesConcludeWhatOnePassAtTheEndWould) {
  PendingPass in_order;
  in_order.in_order = true;
  in_order.read_first = true;
  session(1, "192.0.2.7", t0, {true}, true);              // still open
  session(2, "192.0.2.7", t0 + 10 * second, {true});      // ended, behind it
  session(3, "192.0.2.8", t0 + 20 * second, {true});      // another client
  auto first = analyse_pending(*db_, rules_, in_order);
  ASSERT_TRUE(first) << first.message();
  EXPECT_EQ(first.value(), 1);
  EXPECT_EQ(count("SELECT count(*) FROM analysis_open"), 2);
  exec("UPDATE sessions SET close_us = " + std::to_string(t0 + 30 * second) + " WHERE id = 1");
  exec("INSERT INTO events (session_id, source, stage, time_us) VALUES (1, 'milter', 'close', " +
       std::to_string(t0 + 30 * second) + ")");
  auto second_pass = analyse_pending(*db_, rules_, in_order);
  ASSERT_TRUE(second_pass) << second_pass.message();
  EXPECT_EQ(second_pass.value(), 2);
  EXPECT_EQ(count("SELECT count(*) FROM analysis_open"), 0);
  EXPECT_EQ(count("SELECT sessions FROM client_timing WHERE client_addr = '192.0.2.7'"), 2);
  const std::string in_passes = conclusions();
  ASSERT_TRUE(analyse_stored(*db_, rules_, std::nullopt, {}));
  EXPECT_EQ(conclusions(), in_passes);
  expect_counts_match_rows();
}

TEST_F(StoredAnalysisTest, ASessionLeftWaitingIsTakenOnceItsElderEndsEvenWithNothingNew) {
  PendingPass in_order;
  in_order.in_order = true;
  session(1, "192.0.2.7", t0, {true}, true);
  session(2, "192.0.2.7", t0 + 10 * second, {true});
  ASSERT_TRUE(analyse_pending(*db_, rules_, in_order));
  EXPECT_EQ(count("SELECT count(*) FROM session_analysis"), 0);
  // Session 1 ends without an event the analysis has not seen (as a pruned
  // or rewritten session might): the waiting session 2 is still taken.
  exec("UPDATE sessions SET close_us = " + std::to_string(t0 + 30 * second) + " WHERE id = 1");
  auto behind = analysis_behind(*db_);
  ASSERT_TRUE(behind);
  EXPECT_TRUE(behind.value());
  auto pass = analyse_pending(*db_, rules_, false);
  ASSERT_TRUE(pass) << pass.message();
  EXPECT_EQ(pass.value(), 2);
  EXPECT_EQ(count("SELECT count(*) FROM analysis_open"), 0);
}

}  // namespace
}  // namespace smtpscope::analysis
