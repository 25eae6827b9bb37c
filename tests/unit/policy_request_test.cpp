#include "policy_request.h"

#include <gtest/gtest.h>

namespace smtpscope::policy {
namespace {

std::vector<Request> parse_all(RequestParser& parser, std::string_view bytes, ParseError expect) {
  std::vector<Request> out;
  EXPECT_EQ(parser.feed(bytes, out), expect);
  return out;
}

TEST(PolicyParser, SplitsRequestsOnEmptyLines) {
  RequestParser parser(Limits{});
  auto requests = parse_all(parser,
                            "request=smtpd_access_policy\nprotocol_state=RCPT\n\n"
                            "protocol_state=DATA\nx=\n\n",
                            ParseError::none);
  ASSERT_EQ(requests.size(), 2u);
  EXPECT_EQ(requests[0].get("protocol_state"), "RCPT");
  EXPECT_EQ(requests[1].get("protocol_state"), "DATA");
  EXPECT_EQ(requests[1].get("x"), "");
  EXPECT_EQ(requests[1].get("missing"), "");
}

TEST(PolicyParser, AcceptsBytesInAnyPieces) {
  RequestParser parser(Limits{});
  const std::string text = "a=1\r\nb=two=2\nb=again\n\n";
  std::vector<Request> out;
  for (char c : text) ASSERT_EQ(parser.feed(std::string_view(&c, 1), out), ParseError::none);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].get("a"), "1");
  EXPECT_EQ(out[0].get("b"), "two=2");  // first value; both kept in order
  EXPECT_EQ(out[0].attributes.size(), 3u);
  EXPECT_FALSE(parser.mid_request());
}

TEST(PolicyParser, KnowsWhenARequestIsHalfDone) {
  RequestParser parser(Limits{});
  parse_all(parser, "a=1\nb=", ParseError::none);
  EXPECT_TRUE(parser.mid_request());
}

TEST(PolicyParser, EmptyLinesBetweenRequestsAreIgnored) {
  RequestParser parser(Limits{});
  EXPECT_TRUE(parse_all(parser, "\n\n\n", ParseError::none).empty());
}

TEST(PolicyParser, RejectsLinesWithoutEquals) {
  RequestParser parser(Limits{});
  auto done = parse_all(parser, "a=1\n\njunk\n", ParseError::line_without_equals);
  EXPECT_EQ(done.size(), 1u);  // the complete request before the error survives
  EXPECT_EQ(parser.error_context(), "junk");
  std::vector<Request> out;
  EXPECT_EQ(parser.feed("a=1\n\n", out), ParseError::line_without_equals);  // stays failed
}

TEST(PolicyParser, RejectsAnEmptyName) {
  RequestParser parser(Limits{});
  parse_all(parser, "=value\n", ParseError::line_without_equals);
}

TEST(PolicyParser, RejectsNulBytes) {
  RequestParser parser(Limits{});
  parse_all(parser, std::string_view("a=b\0c\n", 6), ParseError::nul_byte);
}

TEST(PolicyParser, LineLimitIsCheckedAtTheBoundary) {
  const Limits limits{16, 1024, 100};
  for (std::size_t length : {15u, 16u, 17u}) {
    RequestParser parser(limits);
    const std::string line = "a=" + std::string(length - 2, 'x') + "\n\n";
    std::vector<Request> out;
    const ParseError error = parser.feed(line, out);
    EXPECT_EQ(error, length <= 16 ? ParseError::none : ParseError::line_too_long) << length;
  }
}

TEST(PolicyParser, AnEndlessLineFailsWithoutANewline) {
  RequestParser parser(Limits{16, 1024, 100});
  parse_all(parser, std::string(17, 'x'), ParseError::line_too_long);
}

TEST(PolicyParser, RequestLimitIsCheckedAtTheBoundary) {
  // Each "a=x" line costs 4 bytes with its newline; 8 lines = 32 bytes.
  for (std::size_t lines : {7u, 8u, 9u}) {
    RequestParser parser(Limits{100, 32, 100});
    std::string request;
    for (std::size_t i = 0; i < lines; ++i) request += "a=x\n";
    std::vector<Request> out;
    const ParseError error = parser.feed(request + "\n", out);
    EXPECT_EQ(error, lines <= 8 ? ParseError::none : ParseError::request_too_large) << lines;
  }
}

TEST(PolicyParser, AttributeCountIsBounded) {
  for (std::size_t count : {2u, 3u, 4u}) {
    RequestParser parser(Limits{100, 1024, 3});
    std::string request;
    for (std::size_t i = 0; i < count; ++i) request += "a=x\n";
    std::vector<Request> out;
    const ParseError error = parser.feed(request + "\n", out);
    EXPECT_EQ(error, count <= 3 ? ParseError::none : ParseError::too_many_attributes) << count;
  }
}

TEST(PolicyParser, TheContextOfARefusedLineIsItsFirst80Bytes) {
  const std::string forged = "x=\" reason=\"forged\" client=\"10.6.6.6";
  {
    RequestParser parser(Limits{64, 1024, 100});  // the whole line in one piece
    parse_all(parser, forged + std::string(100, 'y') + "\n", ParseError::line_too_long);
    EXPECT_EQ(parser.error_context(), (forged + std::string(100, 'y')).substr(0, 80));
  }
  {
    RequestParser parser(Limits{64, 1024, 100});  // part kept from an earlier piece
    parse_all(parser, forged, ParseError::none);
    parse_all(parser, std::string(100, 'y'), ParseError::line_too_long);
    EXPECT_EQ(parser.error_context(), (forged + std::string(100, 'y')).substr(0, 80));
  }
  {
    RequestParser parser(Limits{});
    parse_all(parser, "a=b", ParseError::none);
    parse_all(parser, std::string("c\0d\n", 4), ParseError::nul_byte);
    EXPECT_EQ(parser.error_context(), std::string("a=bc\0d", 6));
  }
}

TEST(PolicyParser, FeedOneStopsAfterEachRequestAndKeepsTheRest) {
  RequestParser parser(Limits{});
  std::string_view bytes = "a=1\n\n\nb=2\n\nc=";
  std::vector<Request> out;
  ASSERT_EQ(parser.feed_one(bytes, out), ParseError::none);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].get("a"), "1");
  EXPECT_EQ(bytes, "\nb=2\n\nc=");
  ASSERT_EQ(parser.feed_one(bytes, out), ParseError::none);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[1].get("b"), "2");
  EXPECT_EQ(bytes, "c=");
  ASSERT_EQ(parser.feed_one(bytes, out), ParseError::none);  // no request completes: all taken
  EXPECT_EQ(out.size(), 2u);
  EXPECT_TRUE(bytes.empty());
  EXPECT_TRUE(parser.mid_request());
  bytes = "3\n\n";
  ASSERT_EQ(parser.feed_one(bytes, out), ParseError::none);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[2].get("c"), "3");
}

TEST(PolicyParser, FeedOneReportsAnErrorAfterTheRequestsBeforeIt) {
  RequestParser parser(Limits{});
  std::string_view bytes = "a=1\n\njunk\n";
  std::vector<Request> out;
  ASSERT_EQ(parser.feed_one(bytes, out), ParseError::none);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(parser.feed_one(bytes, out), ParseError::line_without_equals);
  EXPECT_EQ(out.size(), 1u);
}

}  // namespace
}  // namespace smtpscope::policy
