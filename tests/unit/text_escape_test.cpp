#include "text_escape.h"

#include <gtest/gtest.h>

namespace smtpscope {
namespace {

// "x\uNNNNy", the escaped form of x, c, y.
std::string fmt_u(char32_t c) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "x\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += hex[(c >> shift) & 0x0F];
  return out + "y";
}

TEST(Printable, KeepsPlainText) { EXPECT_EQ(printable("mx.example.com"), "mx.example.com"); }

TEST(Printable, EscapesControlBytesAndBackslash) {
  EXPECT_EQ(printable("a\r\nb\tc\x1b[31m\\"), "a\\r\\nb\\tc\\x1b[31m\\\\");
  EXPECT_EQ(printable(std::string("nul\0x", 5)), "nul\\x00x");
  EXPECT_EQ(printable("\x7f"), "\\x7f");
}

TEST(Printable, KeepsValidUtf8AndEscapesInvalidBytes) {
  EXPECT_EQ(printable("caf\xc3\xa9.example"), "caf\xc3\xa9.example");
  EXPECT_EQ(printable("bad\xff\xfe"), "bad\\xff\\xfe");
  EXPECT_EQ(printable("\xc3"), "\\xc3");                 // truncated sequence
  EXPECT_EQ(printable("\xe0\x80\xaf"), "\\xe0\\x80\\xaf");  // overlong
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");  // surrogate
}

TEST(Printable, BoundsTheOutputAtTheLimit) {
  const std::string ten(10, 'a');
  EXPECT_EQ(printable(ten, 11), ten);
  EXPECT_EQ(printable(ten, 10), ten);
  EXPECT_EQ(printable(ten, 9), std::string(9, 'a') + "...");
}

// UTF-8 of a code point (test helper; the code points here are valid).
std::string utf8(char32_t c) {
  std::string out;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
  return out;
}

TEST(Printable, EscapesC1ControlsAtTheirEdges) {
  EXPECT_EQ(printable("a\x7f" "b"), "a\\x7fb");                // DEL, the last C0-range byte
  EXPECT_EQ(printable(utf8(0x80)), "\\u0080");                // first C1
  EXPECT_EQ(printable("\xc2\x9b" "31m"), "\\u009b31m");        // CSI
  EXPECT_EQ(printable(utf8(0x9F)), "\\u009f");                // last C1
  EXPECT_EQ(printable(utf8(0xA0)), "\xc2\xa0");               // NBSP: shown as it is
  EXPECT_EQ(printable(utf8(0xFF)), "\xc3\xbf");
}

TEST(Printable, EscapesEveryBidiAndLineBreakingFormatCharacter) {
  for (const char32_t c : {0x061C, 0x200E, 0x200F, 0x2028, 0x2029, 0x202A, 0x202B, 0x202C, 0x202D,
                           0x202E, 0x2066, 0x2067, 0x2068, 0x2069}) {
    SCOPED_TRACE(static_cast<unsigned>(c));
    const std::string shown = printable("x" + utf8(c) + "y");
    EXPECT_EQ(shown, fmt_u(c));
    EXPECT_EQ(shown.find(utf8(c)), std::string::npos);
  }
  // Their neighbours are ordinary text.
  for (const char32_t c : {0x061B, 0x061D, 0x200D, 0x2010, 0x2027, 0x202F, 0x2065, 0x206A}) {
    SCOPED_TRACE(static_cast<unsigned>(c));
    EXPECT_EQ(printable(utf8(c)), utf8(c));
  }
  EXPECT_EQ(printable(utf8(0x1F600)), utf8(0x1F600));  // 4-byte sequences are kept
}

TEST(Printable, EscapesEncodingsThatAreNotUtf8ByteByByte) {
  EXPECT_EQ(printable("\xc1\x9b"), "\\xc1\\x9b");                  // overlong CSI (2 bytes)
  EXPECT_EQ(printable("\xe0\x82\x9b"), "\\xe0\\x82\\x9b");          // overlong CSI (3 bytes)
  EXPECT_EQ(printable("\xf0\x82\x80\xae"), "\\xf0\\x82\\x80\\xae"); // overlong U+202E (4 bytes)
  EXPECT_EQ(printable("\xc0\xa2"), "\\xc0\\xa2");                  // overlong quote
  EXPECT_EQ(printable("\xe2\x80"), "\\xe2\\x80");                  // U+202E cut short
  EXPECT_EQ(printable("\x9b"), "\\x9b");                          // a lone continuation byte
  EXPECT_EQ(printable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80"); // above U+10FFFF
}

TEST(LogQuoted, EscapesQuotesAndBackslashesSoNoFieldCanBeForged) {
  EXPECT_EQ(log_quoted("plain text"), "\"plain text\"");
  EXPECT_EQ(log_quoted("x\" reason=\"forged\" client=\"10.6.6.6"),
            "\"x\\\" reason=\\\"forged\\\" client=\\\"10.6.6.6\"");
  EXPECT_EQ(log_quoted("a\\\"b"), "\"a\\\\\\\"b\"");  // a\"b: the backslash cannot eat the escape
  EXPECT_EQ(log_quoted("end\\"), "\"end\\\\\"");
  EXPECT_EQ(log_quoted(""), "\"\"");
}

TEST(LogQuoted, MakesEverythingElsePrintable) {
  EXPECT_EQ(log_quoted("a\nb\x1b[2J\xff" "\xe2\x80\xae"), "\"a\\nb\\x1b[2J\\xff\\u202e\"");
  EXPECT_EQ(printable("\""), "\"");  // only the log field escapes the quote
}

TEST(LogQuoted, BoundsTheValue) {
  EXPECT_EQ(log_quoted(std::string(10, 'q'), 10), "\"qqqqqqqqqq\"");
  EXPECT_EQ(log_quoted(std::string(11, 'q'), 10), "\"qqqqqqqqqq...\"");
  EXPECT_EQ(log_quoted(std::string(100000, '"')).size(), 2 + 256 + 3);
}

TEST(HtmlEscape, EscapesMarkupAndQuotes) {
  EXPECT_EQ(html_escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
}

TEST(Bounded, NeverSplitsAUtf8Sequence) {
  const std::string text = "ab\xc3\xa9";  // 4 bytes, é at 2..3
  EXPECT_EQ(bounded(text, 4), text);
  EXPECT_EQ(bounded(text, 3), "ab");
  EXPECT_EQ(bounded(text, 2), "ab");
  EXPECT_EQ(bounded(text, 1), "a");
}

}  // namespace
}  // namespace smtpscope
