#include "json_text.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace smtpscope {
namespace {

std::string quoted(std::string_view text) {
  std::string out;
  append_json_string(out, text);
  return out;
}

TEST(JsonText, EscapesWhatJsonRequires) {
  EXPECT_EQ(quoted("plain"), "\"plain\"");
  EXPECT_EQ(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
  EXPECT_EQ(quoted("\r\n\t\x01\x1f"), "\"\\r\\n\\t\\u0001\\u001f\"");
  EXPECT_EQ(quoted("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
  EXPECT_EQ(quoted("bad\xff"), "\"bad\\ufffd\"");
}

TEST(JsonText, ObjectsParseBackAndKeepTheFirstOfRepeatedNames) {
  const std::vector<Attribute> attributes = {
      {"helo_name", "<script>\"x\"</script>\x1b"}, {"b", "1"}, {"b", "2"}, {"empty", ""}};
  const auto parsed = nlohmann::json::parse(attributes_to_json(attributes));
  EXPECT_EQ(parsed["helo_name"], "<script>\"x\"</script>\x1b");
  EXPECT_EQ(parsed["b"], "1");
  EXPECT_EQ(parsed["empty"], "");
  EXPECT_EQ(parsed.size(), 3u);
  EXPECT_EQ(attributes_to_json({}), "{}");
}

}  // namespace
}  // namespace smtpscope
