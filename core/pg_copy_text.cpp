#include "pg_copy_text.h"

#include "text_escape.h"

namespace smtpscope::pg {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

bool append_copy_field(std::string& out, std::string_view value) {
  bool replaced = false;
  std::size_t i = 0;
  while (i < value.size()) {
    const auto byte = static_cast<unsigned char>(value[i]);
    if (byte >= 0x80) {
      const std::size_t length = utf8_sequence_length(value, i);
      if (length == 0) {
        out += kReplacement;
        replaced = true;
        ++i;
      } else {
        out.append(value.substr(i, length));
        i += length;
      }
      continue;
    }
    switch (byte) {
      case '\0':
        out += kReplacement;
        replaced = true;
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        out.push_back(static_cast<char>(byte));
    }
    ++i;
  }
  return replaced;
}

}  // namespace smtpscope::pg
