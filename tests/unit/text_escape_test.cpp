#include "text_escape.h"

#include <gtest/gtest.h>

namespace smtpscope {
namespace {

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
