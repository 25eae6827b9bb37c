// db copy's COPY text encoding and table list; the copy itself against a
// real server is tests/integration/test_postgres_schema.py.
#include "db_copy.h"

#include <gtest/gtest.h>

#include <set>

namespace smtpscope::cli {
namespace {

std::string field(std::string_view value, bool* replaced = nullptr) {
  std::string out;
  const bool changed = append_copy_field(out, value);
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

TEST(DbCopy, CopiesEveryTableButTheCountsItsTriggersRebuild) {
  std::set<std::string> names;
  for (const auto& table : copied_tables()) names.insert(table.name);
  EXPECT_EQ(names,
            (std::set<std::string>{"sessions", "transactions", "attribute_sets", "event_rows",
                                   "drops", "ingest_files", "remote_events", "fingerprints",
                                   "session_analysis", "analysis_state", "analysis_open"}));
}

}  // namespace
}  // namespace smtpscope::cli
