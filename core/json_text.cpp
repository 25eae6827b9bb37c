#include "json_text.h"

#include "text_escape.h"

#include <array>

namespace smtpscope {

void append_json_string(std::string& out, std::string_view text) {
  static constexpr std::array<char, 16> hex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                               '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
  out += '"';
  std::size_t i = 0;
  while (i < text.size()) {
    // Copy a run of characters that need no escaping in one append.
    std::size_t run = i;
    while (run < text.size()) {
      const auto r = static_cast<unsigned char>(text[run]);
      if (r < 0x20 || r >= 0x80 || r == '"' || r == '\\') break;
      ++run;
    }
    if (run > i) {
      out.append(text.data() + i, run - i);
      i = run;
      continue;
    }
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x80) {
      const std::size_t length = utf8_sequence_length(text, i);
      if (length == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(text.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 0x0F];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
}

std::string attributes_to_json(const std::vector<Attribute>& attributes) {
  std::string out;
  out.reserve(64 + attributes.size() * 32);
  out += '{';
  bool first = true;
  for (std::size_t i = 0; i < attributes.size(); ++i) {
    const Attribute& a = attributes[i];
    bool repeated = false;
    for (std::size_t j = 0; j < i && !repeated; ++j) repeated = attributes[j].name == a.name;
    if (repeated) continue;
    if (!first) out += ',';
    first = false;
    append_json_string(out, a.name);
    out += ':';
    append_json_string(out, a.value);
  }
  out += '}';
  return out;
}

}  // namespace smtpscope
