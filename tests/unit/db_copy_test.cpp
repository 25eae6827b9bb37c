// db copy's COPY text encoding and table list; the copy itself against a
// real server is tests/integration/test_postgres_schema.py.
#include "db_copy.h"
#include "pg_copy_text.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "test_support.h"

namespace smtpscope::cli {
namespace {

std::string field(std::string_view value, bool* replaced = nullptr) {
  std::string out;
  const bool changed = pg::append_copy_field(out, value);
  if (replaced != nullptr) *replaced = changed;
  return out;
}

TEST(DbCopy, EscapesCopyTextSpecials) {
  bool replaced = true;
  EXPECT_EQ(field("a\\b\tc\nd\re", &replaced), "a\\\\b\\tc\\nd\\re");
  EXPECT_FALSE(replaced);
  EXPECT_EQ(field("\\N"), "\\\\N");  // text "\N", not NULL
  EXPECT_EQ(field("h\xC3\xA9llo \xF0\x9F\x93\xA7"), "h\xC3\xA9llo \xF0\x9F\x93\xA7");
}

// A REAL keeps every digit (SQLite's own text form keeps 15), NULL is \N,
// an integer and text as they read.
TEST(DbCopy, ColumnsKeepEveryDigitOfANumber) {
  auto db = sqlite::Database::open(":memory:", true, 1000);
  ASSERT_TRUE(db);
  auto q = db.value()->prepare("SELECT 21.0 / 11.0, NULL, 7, 'a\tb', 1e300");
  ASSERT_TRUE(q);
  ASSERT_TRUE(q.value().step().value());
  std::string out;
  for (int column = 0; column < 5; ++column) {
    if (column > 0) out += '|';
    EXPECT_FALSE(pg::append_copy_column(out, q.value(), column));
  }
  EXPECT_EQ(out, "1.9090909090909092|\\N|7|a\\tb|1e+300");
}

TEST(DbCopy, ReplacesWhatPostgresTextCannotHold) {
  bool replaced = false;
  EXPECT_EQ(field(std::string_view("a\0b", 3), &replaced),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_TRUE(replaced);
  EXPECT_EQ(field("x\xFFy\xC3", &replaced), "x\xEF\xBF\xBDy\xEF\xBF\xBD");
  EXPECT_TRUE(replaced);
  EXPECT_EQ(field("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
}

// Every table of the SQLite schema is copied, but schema_version (the
// server's own), client_day_shapes (session_analysis's triggers rebuild
// it) and the forwarder's local notes (forward_state, forward_queue), each
// with every column.
TEST(DbCopy, CopiesEveryTableButTheCountsItsTriggersRebuild) {
  auto db = smtpscope::testing::migrated_memory_database();
  ASSERT_NE(db, nullptr);
  std::map<std::string, std::set<std::string>> schema;
  auto q = db->prepare(
      "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p WHERE m.type ="
      " 'table' AND m.name NOT LIKE 'sqlite_%' AND m.name NOT IN ('schema_version',"
      " 'client_day_shapes', 'forward_state', 'forward_queue')");
  ASSERT_TRUE(q);
  while (q.value().step().value()) schema[q.value().column_text(0)].insert(q.value().column_text(1));
  std::map<std::string, std::set<std::string>> copied;
  for (const auto& table : copied_tables()) {
    for (std::string column : table.columns) {
      std::erase(column, '"');
      copied[table.name].insert(column);
    }
  }
  EXPECT_EQ(copied, schema);
}

}  // namespace
}  // namespace smtpscope::cli
