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

void append_escape(std::string& out, unsigned char byte) {
  switch (byte) {
    case '\n': out += "\\n"; return;
    case '\r': out += "\\r"; return;
    case '\t': out += "\\t"; return;
    case '\\': out += "\\\\"; return;
    default: break;
  }
  static constexpr std::array<char, 16> hex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                               '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  out += "\\x";
  out += hex[byte >> 4];
  out += hex[byte & 0x0F];
}

}  // namespace

std::string printable(std::string_view raw, std::size_t max_bytes) {
  std::string out;
  out.reserve(raw.size() < max_bytes ? raw.size() : max_bytes);
  std::size_t i = 0;
  while (i < raw.size()) {
    if (out.size() >= max_bytes) {
      out += "...";
      break;
    }
    const auto byte = static_cast<unsigned char>(raw[i]);
    if (byte >= 0x20 && byte < 0x7F && byte != '\\') {
      out += static_cast<char>(byte);
      ++i;
    } else if (const std::size_t length = byte >= 0x80 ? utf8_sequence_length(raw, i) : 0;
               length > 0) {
      out.append(raw.substr(i, length));
      i += length;
    } else {
      append_escape(out, byte);
      ++i;
    }
  }
  return out;
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
