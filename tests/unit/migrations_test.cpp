#include "migrations.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <limits>

#include "store.h"
#include "test_support.h"

namespace smtpscope {
namespace {

std::unique_ptr<sqlite::Database> memory_db() {
  auto db = sqlite::Database::open(":memory:", true, 1000);
  EXPECT_TRUE(db) << db.message();
  return std::move(db).value();
}

TEST(Migrations, FreshDatabaseReachesTheLatestVersion) {
  auto db = memory_db();
  ASSERT_TRUE(migrate(*db, embedded_migrations()));
  auto version = schema_version(*db);
  ASSERT_TRUE(version);
  EXPECT_EQ(version.value(), latest_schema_version());
  EXPECT_GE(latest_schema_version(), 1);
  EXPECT_TRUE(db->exec("SELECT id, stream, client_addr FROM sessions"));
}

TEST(Migrations, ApplyingTwiceChangesNothing) {
  auto db = memory_db();
  ASSERT_TRUE(migrate(*db, embedded_migrations()));
  ASSERT_TRUE(migrate(*db, embedded_migrations()));
  auto rows = db->prepare("SELECT count(*) FROM schema_version");
  ASSERT_TRUE(rows);
  ASSERT_TRUE(rows.value().step().value());
  EXPECT_EQ(rows.value().column_int(0), static_cast<std::int64_t>(embedded_migrations().size()));
}

TEST(Migrations, NewerDatabaseIsRefusedUntouched) {
  testing::TempDir dir;
  const std::string path = dir.file("newer.db");
  {
    auto db = open_database(path, 1000);
    ASSERT_TRUE(db) << db.message();
    ASSERT_TRUE(db.value()->exec("INSERT INTO schema_version VALUES (999, '999_future', 0)"));
  }
  auto reopened = open_database(path, 1000);
  ASSERT_FALSE(reopened);
  EXPECT_NE(reopened.message().find("schema version 999, newer than this smtpscope knows"),
            std::string::npos)
      << reopened.message();
}

// A database at the current schema with one more schema_version row, by
// hand (bound as a 64-bit integer, as SQLite stores it).
std::string database_with_version(const testing::TempDir& dir, std::int64_t version) {
  const std::string path = dir.file("versioned.db");
  auto db = open_database(path, 1000);
  EXPECT_TRUE(db) << db.message();
  auto insert = db.value()->prepare(
      "INSERT INTO schema_version (version, name, applied_us) VALUES (?1, 'by hand', 0)");
  EXPECT_TRUE(insert) << insert.message();
  EXPECT_TRUE(insert.value().bind(1, version).run());
  return path;
}

std::string file_bytes(const std::string& path) {
  std::ifstream file(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(file), {});
}

// Read as a 32-bit int, 2^31 became negative (every migration re-run:
// "table sessions already exists") and 2^32+5 became 5 (migration 6 re-run
// on a current database).
TEST(Migrations, VersionsBeyond32BitsAreRefusedAsNewer) {
  for (const std::int64_t version : {std::int64_t{1} << 31, (std::int64_t{1} << 32) + 5,
                                     std::numeric_limits<std::int64_t>::max()}) {
    SCOPED_TRACE(version);
    testing::TempDir dir;
    const std::string path = database_with_version(dir, version);
    const std::string before = file_bytes(path);
    {
      auto plain = sqlite::Database::open(path, false, 1000);
      ASSERT_TRUE(plain) << plain.message();
      auto read = schema_version(*plain.value());
      ASSERT_TRUE(read) << read.message();
      EXPECT_EQ(read.value(), version);
    }
    auto reopened = open_database(path, 1000);
    ASSERT_FALSE(reopened);
    EXPECT_NE(reopened.message().find(fmt::format(
                  "database {} has schema version {}, newer than this smtpscope knows ({})", path,
                  version, latest_schema_version())),
              std::string::npos)
        << reopened.message();
    EXPECT_EQ(file_bytes(path), before);
  }
}

// No smtpscope writes a negative version: refused with the version named,
// rather than taken for an old database whose migrations are all pending.
TEST(Migrations, ANegativeVersionIsRefusedNotMigrated) {
  for (const std::int64_t version :
       {std::int64_t{-1}, -(std::int64_t{1} << 31), std::numeric_limits<std::int64_t>::min()}) {
    SCOPED_TRACE(version);
    testing::TempDir dir;
    const std::string path = database_with_version(dir, version);
    const std::string before = file_bytes(path);
    auto reopened = open_database(path, 1000);
    ASSERT_FALSE(reopened);
    EXPECT_NE(reopened.message().find(fmt::format(
                  "database {} has schema version {}, which no smtpscope writes", path, version)),
              std::string::npos)
        << reopened.message();
    EXPECT_EQ(file_bytes(path), before);
  }
}

TEST(Migrations, AnOnlyNegativeVersionCreatesNoTables) {
  auto db = memory_db();
  ASSERT_TRUE(
      db->exec("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
               " applied_us INTEGER NOT NULL);"
               "INSERT INTO schema_version VALUES (-2147483648, 'by hand', 0)"));
  Status migrated = migrate(*db, embedded_migrations());
  ASSERT_FALSE(migrated);
  EXPECT_NE(migrated.message().find("schema version -2147483648, which no smtpscope writes"),
            std::string::npos)
      << migrated.message();
  EXPECT_FALSE(db->exec("SELECT count(*) FROM sessions"));
}

TEST(Migrations, AFailingMigrationLeavesNoTrace) {
  auto db = memory_db();
  const std::vector<Migration> broken = {
      {1, "001_ok", "CREATE TABLE a (x INTEGER);"},
      {2, "002_broken", "CREATE TABLE b (y INTEGER); THIS IS NOT SQL;"}};
  Status result = migrate(*db, broken);
  ASSERT_FALSE(result);
  EXPECT_NE(result.message().find("migration 002_broken"), std::string::npos) << result.message();
  EXPECT_EQ(schema_version(*db).value(), 1);
  EXPECT_FALSE(db->exec("SELECT y FROM b"));  // rolled back with its migration
}

std::vector<Migration> migrations_up_to(int version) {
  std::vector<Migration> some;
  for (const Migration& m : embedded_migrations()) {
    if (m.version <= version) some.push_back(m);
  }
  return some;
}

// The first column of the query's one row, as text.
std::string single(sqlite::Database& db, const std::string& sql) {
  auto query = db.prepare(sql);
  EXPECT_TRUE(query) << query.message();
  EXPECT_TRUE(query.value().step().value());
  return query.value().column_text(0);
}

std::int64_t count(sqlite::Database& db, const std::string& sql) {
  return std::stoll(single(db, sql));
}

// Migration 6 rebuilds events and transactions to rewrite their CHECK
// constraints; what a version-5 database held must come through unchanged.
TEST(Migrations, RebuildingTheWritePathKeepsEveryRowAndConstraint) {
  auto db = memory_db();
  ASSERT_TRUE(migrate(*db, migrations_up_to(5)));
  ASSERT_TRUE(db->exec(
      "INSERT INTO sessions (id, stream, client_addr, client_port, connect_us)"
      "  VALUES (7, 'milter:1:1', '192.0.2.9', 4000, 100);"
      "INSERT INTO transactions (id, session_id, seq, mail_from, started_us, outcome,"
      "  message_bytes) VALUES (3, 7, 1, '<a@example.com>', 150, 'aborted', 512);"
      "INSERT INTO events (id, session_id, transaction_id, source, stage, time_us, argument,"
      "  attributes) VALUES (11, 7, NULL, 'milter', 'connect', 100, NULL, '{}'),"
      "  (12, 7, 3, 'policy', 'mail', 150, '<a@example.com>', '{\"sender\":\"a@example.com\"}')"));
  const std::string all_events =
      "SELECT group_concat(id || source || stage || time_us || coalesce(argument, '-')"
      " || attributes || coalesce(transaction_id, '-'), '|') FROM events";
  const std::string events_before = single(*db, all_events);
  ASSERT_NE(events_before.find("a@example.com"), std::string::npos);

  Status migrated = migrate(*db, embedded_migrations());
  ASSERT_TRUE(migrated) << migrated.message();

  EXPECT_EQ(single(*db, all_events), events_before);
  EXPECT_EQ(count(*db, "SELECT count(*) FROM transactions WHERE id = 3 AND session_id = 7"
                       " AND outcome = 'aborted' AND message_bytes = 512"),
            1);
  EXPECT_EQ(count(*db, "SELECT count(*) FROM session_timeline WHERE session_id = 7"), 2);
  EXPECT_EQ(count(*db, "SELECT count(*) FROM sqlite_schema WHERE name = 'sessions_by_stream'"), 0);
  EXPECT_FALSE(db->exec("INSERT INTO events (session_id, source, stage, time_us)"
                        " VALUES (7, 'smtp', 'x', 1)"));
  EXPECT_FALSE(db->exec("UPDATE transactions SET outcome = 'lost' WHERE id = 3"));
  EXPECT_FALSE(db->exec("INSERT INTO transactions (session_id, seq, started_us)"
                        " VALUES (7, 1, 160)"));  // (session_id, seq) is still unique
  EXPECT_EQ(single(*db, "PRAGMA integrity_check"), "ok");
}

// Migration 7 adds sessions.host: a version-6 database keeps its sessions
// (host NULL: unknown), views still read them, and new rows can name one.
TEST(Migrations, AVersion6DatabaseGainsTheSessionHost) {
  auto db = memory_db();
  ASSERT_TRUE(migrate(*db, migrations_up_to(6)));
  ASSERT_TRUE(db->exec(
      "INSERT INTO sessions (id, stream, client_addr, client_port, connect_us)"
      "  VALUES (7, 'log:mx1:10', '192.0.2.9', 4000, 100);"
      "INSERT INTO events (session_id, source, stage, time_us) VALUES (7, 'log', 'connect', 100)"));
  EXPECT_FALSE(db->exec("SELECT host FROM sessions"));
  Status migrated = migrate(*db, embedded_migrations());
  ASSERT_TRUE(migrated) << migrated.message();
  EXPECT_GE(schema_version(*db).value(), 7);
  EXPECT_EQ(single(*db, "SELECT coalesce(host, 'null') || client_addr FROM sessions WHERE id = 7"),
            "null192.0.2.9");
  EXPECT_EQ(count(*db, "SELECT count(*) FROM session_timeline WHERE session_id = 7"), 1);
  ASSERT_TRUE(db->exec("INSERT INTO sessions (stream, connect_us, host) VALUES ('log:mx2:1', 5, 'mx2')"));
  EXPECT_EQ(count(*db, "SELECT count(*) FROM sessions WHERE host = 'mx2'"), 1);
  EXPECT_EQ(single(*db, "PRAGMA integrity_check"), "ok");
}

// The point of migration 6: checking a row's source builds no temporary
// B-tree (OpenEphemeral) any more.
TEST(Migrations, AnEventInsertBuildsNoTemporaryTable) {
  auto db = memory_db();
  ASSERT_TRUE(migrate(*db, embedded_migrations()));
  auto plan = db->prepare(
      "EXPLAIN INSERT INTO events (session_id, source, stage, time_us) VALUES (1, 'log', 'x', 1)");
  ASSERT_TRUE(plan) << plan.message();
  int ephemeral = 0;
  while (plan.value().step().value()) ephemeral += plan.value().column_text(1) == "OpenEphemeral";
  EXPECT_EQ(ephemeral, 0);
}

TEST(Migrations, NotADatabaseIsAClearError) {
  testing::TempDir dir;
  const std::string path = dir.file("junk.db");
  {
    std::ofstream junk(path);
    junk << "this is not an SQLite file, just text that is long enough to have a header.....";
  }
  auto db = open_database(path, 100);
  ASSERT_FALSE(db);
  EXPECT_NE(db.message().find("file is not a database"), std::string::npos) << db.message();
}

}  // namespace
}  // namespace smtpscope
