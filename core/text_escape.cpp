#include "text_escape.h"

#include <array>

namespace smtpscope {

std::size_t utf8_sequence_length(std::string_view s, std::size_t i) {
  const auto lead = static_cast<unsigned char>(s[i]);
  std::size_t length = 0;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
  } else {
    return 0;
  }
  if (i + length > s.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  }
  const auto second = static_cast<unsigned char>(s[i + 1]);
  if (lead == 0xE0 && second < 0xA0) return 0;  // overlong
  if (lead == 0xED && second > 0x9F) return 0;  // surrogate
  if (lead == 0xF0 && second < 0x90) return 0;  // overlong
  if (lead == 0xF4 && second > 0x8F) return 0;  // above U+10FFFF
  return length;
}

namespace {

constexpr std::array<char, 16> hex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                      '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};

void append_escape(std::string& out, unsigned char byte, bool escape_quote) {
  switch (byte) {
    case '\n': out += "\\n"; return;
    case '\r': out += "\\r"; return;
    case '\t': out += "\\t"; return;
    case '\\': out += "\\\\"; return;
    case '"':
      if (escape_quote) {
        out += "\\\"";
        return;
      }
      break;
    default: break;
  }
  out += "\\x";
  out += hex[byte >> 4];
  out += hex[byte & 0x0F];
}

// Code points a terminal or a browser acts on instead of showing them.
bool acts_on_display(char32_t c) {
  return (c >= 0x80 && c <= 0x9F)          // C1 controls (CSI, OSC, NEL...)
         || c == 0x061C                    // Arabic letter mark
         || c == 0x200E || c == 0x200F     // left-to-right, right-to-left marks
         || (c >= 0x2028 && c <= 0x202E)   // line/paragraph separators, embeddings, overrides
         || (c >= 0x2066 && c <= 0x2069);  // isolates
}

// The code point of a valid UTF-8 sequence (as utf8_sequence_length measured it).
char32_t decode(std::string_view sequence) {
  const auto lead = static_cast<unsigned char>(sequence[0]);
  char32_t c = lead & (0x7F >> sequence.size());
  for (std::size_t k = 1; k < sequence.size(); ++k) {
    c = (c << 6) | (static_cast<unsigned char>(sequence[k]) & 0x3F);
  }
  return c;
}

void append_code_point_escape(std::string& out, char32_t c) {
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += hex[(c >> shift) & 0x0F];
}

// Bytes that stand for themselves: printable ASCII except the backslash
// (and the quote, inside a quoted log field).
bool plain(unsigned char byte, bool escape_quote) {
  return byte >= 0x20 && byte < 0x7F && byte != '\\' && !(escape_quote && byte == '"');
}

std::string escaped(std::string_view raw, std::size_t max_bytes, bool escape_quote) {
  std::string out;
  out.reserve(raw.size() < max_bytes ? raw.size() : max_bytes);
  std::size_t i = 0;
  while (i < raw.size()) {
    if (out.size() >= max_bytes) {
      out += "...";
      break;
    }
    const auto byte = static_cast<unsigned char>(raw[i]);
    if (plain(byte, escape_quote)) {
      out += static_cast<char>(byte);
      ++i;
    } else if (const std::size_t length = byte >= 0x80 ? utf8_sequence_length(raw, i) : 0;
               length > 0) {
      const std::string_view sequence = raw.substr(i, length);
      if (const char32_t c = decode(sequence); acts_on_display(c)) {
        append_code_point_escape(out, c);
      } else {
        out.append(sequence);
      }
      i += length;
    } else {
      append_escape(out, byte, escape_quote);
      ++i;
    }
  }
  return out;
}

}  // namespace

std::string printable(std::string_view raw, std::size_t max_bytes) {
  return escaped(raw, max_bytes, false);
}

std::string log_quoted(std::string_view raw, std::size_t max_bytes) {
  return '"' + escaped(raw, max_bytes, true) + '"';
}

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string_view bounded(std::string_view raw, std::size_t max_bytes) {
  if (raw.size() <= max_bytes) return raw;
  std::size_t cut = max_bytes;
  // Step back over UTF-8 continuation bytes so a sequence is not split.
  while (cut > 0 && (static_cast<unsigned char>(raw[cut]) & 0xC0) == 0x80) --cut;
  return raw.substr(0, cut);
}

}  // namespace smtpscope
