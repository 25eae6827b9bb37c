#include "migrations.h"

#include <gtest/gtest.h>

#include <fstream>

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
