#include "pg_copy_text.h"

#include <fmt/format.h>

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

bool append_copy_column(std::string& out, const sqlite::Statement& row, int column) {
  if (row.column_is_null(column)) {
    out += "\\N";
    return false;
  }
  if (row.column_is_real(column)) {
    out += fmt::format("{}", row.column_double(column));  // the shortest exact form
    return false;
  }
  return append_copy_field(out, row.column_text(column));
}

}  // namespace smtpscope::pg
