// The backend-neutral store access (sql_connection.h): SQLite's placeholders
// as PostgreSQL's (pure: no server needed), the dialect's choices, and the
// SQLite backend behind sql::Statement. The PostgreSQL backend is tested
// against a real server by integration.test_postgres_commands.
#include <gtest/gtest.h>

#include "sql_connection.h"
#include "sql_dialect.h"
#include "sql_placeholders.h"
#include "sqlite.h"

namespace smtpscope::sql {
namespace {

using T = ParamType;

TEST(SqlPlaceholders, NumberedBecomeDollarsWithTheBoundTypesCast) {
  auto out = translate_placeholders("SELECT a FROM t WHERE b = ?1 AND c > ?2 LIMIT ?3",
                                    {T::text, T::int8, T::int8});
  EXPECT_EQ(out.sql, "SELECT a FROM t WHERE b = $1::text AND c > $2::int8 LIMIT $3::int8");
  EXPECT_EQ(out.order, (std::vector<int>{1, 2, 3}));
}

TEST(SqlPlaceholders, ARepeatedIndexIsOneParameter) {
  auto out = translate_placeholders("?1 IS NULL OR x = ?1", {T::text});
  EXPECT_EQ(out.sql, "$1::text IS NULL OR x = $1::text");
  EXPECT_EQ(out.order, (std::vector<int>{1}));
}

TEST(SqlPlaceholders, UnusedIndexesAreLeftOutAndTheRestRenumbered) {
  // sessions_query with only --host and the limit: ?3 and ?5 of five.
  auto out = translate_placeholders("WHERE host = ?5 LIMIT ?3",
                                    {T::unknown, T::unknown, T::int8, T::unknown, T::text});
  EXPECT_EQ(out.sql, "WHERE host = $1::text LIMIT $2::int8");
  EXPECT_EQ(out.order, (std::vector<int>{5, 3}));
}

TEST(SqlPlaceholders, BareQuestionMarksCountOnFromTheLargestSoFar) {
  auto out = translate_placeholders("VALUES (?, ?, ?5, ?)", {});
  EXPECT_EQ(out.sql, "VALUES ($1, $2, $3, $4)");
  EXPECT_EQ(out.order, (std::vector<int>{1, 2, 5, 6}));
}

TEST(SqlPlaceholders, NullWithoutTypeAndFloatsAndTwoDigitIndexes) {
  auto out = translate_placeholders("?12 + ?2", {T::unknown, T::float8});
  EXPECT_EQ(out.sql, "$1 + $2::float8");
  EXPECT_EQ(out.order, (std::vector<int>{12, 2}));
}

TEST(SqlPlaceholders, QuotesAndCommentsAreLeftAlone) {
  auto out = translate_placeholders(
      "SELECT '?1', 'it''s ?', \"odd?col\" -- what ?2\n, ?1 /* ?3 */ FROM t", {T::int8});
  EXPECT_EQ(out.sql,
            "SELECT '?1', 'it''s ?', \"odd?col\" -- what ?2\n, $1::int8 /* ?3 */ FROM t");
  EXPECT_EQ(out.order, (std::vector<int>{1}));
}

TEST(SqlPlaceholders, UnclosedQuoteOrCommentKeepsTheRestAsItIs) {
  EXPECT_EQ(translate_placeholders("x = ?1 AND y = 'a?", {T::text}).sql,
            "x = $1::text AND y = 'a?");
  EXPECT_EQ(translate_placeholders("?1 /* ?2", {}).sql, "$1 /* ?2");
}

TEST(SqlPlaceholders, AnIndexTooLargeForSqliteIsNotRewritten) {
  auto out = translate_placeholders("?0 ?123456 ?1", {});
  EXPECT_EQ(out.sql, "?0 ?123456 $1");
  EXPECT_EQ(out.order, (std::vector<int>{1}));
}

TEST(SqlDialect, EachBackendGetsItsOwnSpelling) {
  EXPECT_EQ(json_patch_function(Dialect::sqlite), "json_patch");
  EXPECT_EQ(json_patch_function(Dialect::postgresql), "smtpscope_json_patch");
  EXPECT_EQ(null_safe_equals(Dialect::postgresql), " IS NOT DISTINCT FROM ");
  EXPECT_EQ(begin_write(Dialect::sqlite), "BEGIN IMMEDIATE");
  EXPECT_EQ(begin_write(Dialect::postgresql), "BEGIN");
  EXPECT_EQ(bytewise(Dialect::postgresql, "state"), "state COLLATE \"C\"");
  EXPECT_EQ(analyse_temp(Dialect::sqlite, "ids"), "");
}

TEST(SqlOverSqlite, BindsStepsAndReadsLikeSqliteStatement) {
  auto opened = sqlite::Database::open(":memory:", true, 1000);
  ASSERT_TRUE(opened) << opened.message();
  auto db = over_sqlite(std::move(opened).value());
  EXPECT_EQ(db->dialect(), Dialect::sqlite);
  EXPECT_EQ(db->name(), ":memory:");
  ASSERT_NE(db->sqlite(), nullptr);
  ASSERT_TRUE(db->exec("CREATE TABLE t (a INTEGER, b TEXT, c REAL)"));
  auto insert = db->prepare("INSERT INTO t VALUES (?1, ?2, ?3)");
  ASSERT_TRUE(insert) << insert.message();
  ASSERT_TRUE(insert.value().bind(1, std::int64_t{7}).bind(2, "x").bind(3, std::optional(0.5)).run());
  ASSERT_TRUE(insert.value()
                  .bind(1, std::optional<std::int64_t>())
                  .bind(2, std::optional<std::string>())
                  .bind(3, std::optional<double>())
                  .run());
  EXPECT_EQ(db->changes(), 1);
  auto q = db->prepare("SELECT a, b, c, a IS NOT NULL FROM t WHERE ?1 IS NULL OR a = ?1 ORDER BY rowid");
  ASSERT_TRUE(q) << q.message();
  auto row = q.value().step();
  ASSERT_TRUE(row && row.value());
  EXPECT_EQ(q.value().column_int(0), 7);
  EXPECT_EQ(q.value().column_text(1), "x");
  EXPECT_DOUBLE_EQ(q.value().column_double(2), 0.5);
  EXPECT_EQ(q.value().column_int(3), 1);
  row = q.value().step();
  ASSERT_TRUE(row && row.value());
  EXPECT_TRUE(q.value().column_is_null(0));
  EXPECT_EQ(q.value().column_int(3), 0);
  row = q.value().step();
  ASSERT_TRUE(row);
  EXPECT_FALSE(row.value());
  q.value().reset();
  q.value().bind(1, std::int64_t{7});
  row = q.value().step();
  ASSERT_TRUE(row && row.value());
  EXPECT_EQ(q.value().column_int(0), 7);
}

TEST(SqlOverSqlite, ErrorsNameTheFile) {
  auto opened = sqlite::Database::open(":memory:", true, 1000);
  ASSERT_TRUE(opened);
  auto db = over_sqlite(*opened.value());
  auto bad = db->prepare("SELECT nothing FROM nowhere");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find(":memory:"), std::string::npos) << bad.message();
  EXPECT_NE(bad.message().find("nowhere"), std::string::npos) << bad.message();
  Status failed = db->exec("INSERT INTO nowhere VALUES (1)");
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.message().find(":memory:"), std::string::npos) << failed.message();
}

}  // namespace
}  // namespace smtpscope::sql
