// The invariant of text made safe for a terminal or a page: no byte a
// terminal acts on (C0 controls, DEL) and none of the code points that
// printable() must escape, looked for by their UTF-8 bytes (independently of
// text_escape's decoder): C1 controls U+0080..U+009F (C2 80..C2 9F), the
// bidi and line-breaking format characters U+061C (D8 9C), U+200E/U+200F
// (E2 80 8E/8F), U+2028..U+202E (E2 80 A8..AE), U+2066..U+2069 (E2 81 A6..A9).
#pragma once

#include <string_view>

namespace smtpscope::fuzz {

// True when `text` holds none of them; `allow_newlines` for whole pages.
inline bool display_safe(std::string_view text, bool allow_newlines = false) {
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    const auto third = i + 2 < text.size() ? static_cast<unsigned char>(text[i + 2]) : 0;
    if ((b < 0x20 && !(allow_newlines && b == '\n')) || b == 0x7f) return false;
    if (b == 0xC2 && next >= 0x80 && next <= 0x9F) return false;
    if (b == 0xD8 && next == 0x9C) return false;
    if (b == 0xE2 && next == 0x80 &&
        (third == 0x8E || third == 0x8F || (third >= 0xA8 && third <= 0xAE))) {
      return false;
    }
    if (b == 0xE2 && next == 0x81 && third >= 0xA6 && third <= 0xA9) return false;
  }
  return true;
}

}  // namespace smtpscope::fuzz
