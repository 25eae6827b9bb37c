#include "event_attributes.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>

namespace smtpscope::analysis {
namespace {

// What the analysis read before EventAttributes: nlohmann's document, each
// member as (name, value if a string, is a string), ordered by name.
std::vector<EventAttributes::Item> as_nlohmann_reads(const std::string& json) {
  std::vector<EventAttributes::Item> out;
  const auto parsed = nlohmann::json::parse(json, nullptr, false);
  if (!parsed.is_object()) return out;
  for (const auto& [name, value] : parsed.items()) {
    out.push_back({name, value.is_string() ? value.get<std::string>() : "", value.is_string()});
  }
  return out;
}

void expect_same_as_nlohmann(const std::string& json) {
  SCOPED_TRACE(json);
  const auto expected = as_nlohmann_reads(json);
  const EventAttributes attributes(json);
  auto got = attributes.items();
  std::sort(got.begin(), got.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  ASSERT_EQ(got.size(), expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].name, expected[i].name);
    EXPECT_EQ(got[i].value, expected[i].value);
    EXPECT_EQ(got[i].is_string, expected[i].is_string);
  }
}

TEST(EventAttributes, ReadsTheStoresCompactObject) {
  const EventAttributes a(R"({"client_addr":"192.0.2.1","program":"postfix/smtpd","ehlo":"1"})");
  EXPECT_EQ(a.text("client_addr"), "192.0.2.1");
  EXPECT_EQ(a.text("program"), "postfix/smtpd");
  EXPECT_EQ(a.text("ehlo"), "1");
  EXPECT_EQ(a.text("missing"), "");
  EXPECT_TRUE(a.contains("ehlo"));
  EXPECT_FALSE(a.contains("eh"));
  ASSERT_NE(a.string_value("program"), nullptr);
  EXPECT_EQ(a.string_value("missing"), nullptr);
  ASSERT_EQ(a.items().size(), 3u);
  EXPECT_EQ(a.items()[0].name, "client_addr");  // in the text's order
  EXPECT_EQ(a.items()[2].name, "ehlo");
}

TEST(EventAttributes, EscapesAreUndone) {
  const EventAttributes a(R"({"helo":"a\"b\\c\/d\te\nf\rg\bh\fi"})");
  EXPECT_EQ(a.text("helo"), "a\"b\\c/d\te\nf\rg\bh\fi");
}

TEST(EventAttributes, NonStringValuesArePresentButHaveNoText) {
  const EventAttributes a(R"({"n":3,"o":{"x":"1"},"l":["a"],"t":true,"z":null,"s":"v"})");
  EXPECT_TRUE(a.contains("n"));
  EXPECT_EQ(a.text("n"), "");
  EXPECT_EQ(a.string_value("o"), nullptr);
  EXPECT_EQ(a.text("s"), "v");
}

TEST(EventAttributes, NotAnObjectGivesNoAttributes) {
  for (const char* json : {"", "{", "}", "[]", "\"x\"", "3", "null", R"({"a":"b")",
                           R"({"a":"b"}x)", R"({"a":"b",})", R"({"a" "b"})", R"({a:"b"})",
                           "{\"a\":\"b\x01\"}", R"({"a":"\q"})", R"({"a":"\u12"})",
                           "{\"a\":\"\xff\"}"}) {
    SCOPED_TRACE(json);
    EXPECT_TRUE(EventAttributes(json).items().empty());
  }
}

// Every text reads as nlohmann::json::parse read it (the stored analysis
// must not change): the fast path's subset and what falls back.
TEST(EventAttributes, ReadsWhatNlohmannReads) {
  for (const char* json : {
           "{}",
           " {} ",
           R"({"b":"2","a":"1"})",
           R"({"a":"1","a":"2"})",                 // a repeated name: the last
           R"({"a":"1","b":"x","a":"3"})",
           R"( { "a" : "1" , "b" : "2" } )",       // white space
           R"({"a":"caf\u00e9","b":"\ud83d\ude00"})",
           "{\"a\":\"caf\xc3\xa9\"}",               // UTF-8
           "{\"a\":\"\xc3\x28\"}",                  // invalid UTF-8
           R"({"a":1.5e3,"b":"x","c":false})",
           R"({"a":{"b":"c"},"d":"e"})",
           R"({"":"empty name","x":""})",
           R"({"q":"\"quoted\"","p":"back\\slash"})",
       }) {
    expect_same_as_nlohmann(json);
  }
}

}  // namespace
}  // namespace smtpscope::analysis
