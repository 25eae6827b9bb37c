// The PostgreSQL schema's pieces that need no server: the embedded
// migrations reach SQLite's version, and the script splitter that feeds them
// to PostgreSQL one statement at a time. Applying them to a real server is
// tests/integration/test_postgres_schema.py.
#include "pg_schema.h"

#include <gtest/gtest.h>

#include "migrations.h"

namespace smtpscope::pg {
namespace {

TEST(PgSchema, MigrationsReachTheSqliteVersionInOrder) {
  const auto& migrations = embedded_migrations();
  ASSERT_FALSE(migrations.empty());
  EXPECT_EQ(latest_version(migrations), smtpscope::latest_schema_version());
  for (std::size_t i = 1; i < migrations.size(); ++i) {
    EXPECT_LT(migrations[i - 1].version, migrations[i].version);
  }
  EXPECT_EQ(latest_version({}), 0);
}

TEST(PgSchema, SplitsAtSemicolonsOutsideQuotesAndComments) {
  const auto statements = split_statements(
      "-- a comment; not a statement\n"
      "CREATE TABLE a (x text DEFAULT ';');\n"
      "/* block; comment */ INSERT INTO a VALUES ('it''s; fine');\n"
      "SELECT \"odd;name\" FROM a;;\n"
      "-- trailing comment only\n");
  ASSERT_EQ(statements.size(), 3u);
  EXPECT_EQ(statements[0], "-- a comment; not a statement\nCREATE TABLE a (x text DEFAULT ';')");
  EXPECT_EQ(statements[1], "/* block; comment */ INSERT INTO a VALUES ('it''s; fine')");
  EXPECT_EQ(statements[2], "SELECT \"odd;name\" FROM a");
}

TEST(PgSchema, KeepsDollarQuotedBodiesWhole) {
  const auto statements = split_statements(
      "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $body$\n"
      "BEGIN PERFORM 1; RETURN $$x;$$::text::int; END;\n"
      "$body$;\n"
      "SELECT $1;");
  ASSERT_EQ(statements.size(), 2u);
  EXPECT_NE(statements[0].find("RETURN $$x;$$::text::int; END;\n$body$"), std::string::npos);
  EXPECT_EQ(statements[1], "SELECT $1");
}

TEST(PgSchema, UnterminatedQuoteStaysOneStatementForTheServerToRefuse) {
  const auto statements = split_statements("SELECT 1; SELECT 'open; SELECT 2");
  ASSERT_EQ(statements.size(), 2u);
  EXPECT_EQ(statements[1], "SELECT 'open; SELECT 2");
}

TEST(PgSchema, EmbeddedSchemaSplitsIntoCompleteStatements) {
  for (const auto& migration : embedded_migrations()) {
    const auto statements = split_statements(migration.sql);
    // 009 creates the whole store at once; later ones add a table or two.
    EXPECT_GT(statements.size(), migration.version == 9 ? 20u : 0u) << migration.name;
    for (const auto& statement : statements) {
      // One CREATE per statement: none swallowed its neighbour.
      const auto first = statement.find("CREATE ");
      EXPECT_EQ(statement.find("CREATE ", first + 1), std::string::npos) << statement;
    }
  }
}

}  // namespace
}  // namespace smtpscope::pg
