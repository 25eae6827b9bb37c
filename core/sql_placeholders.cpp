#include "sql_placeholders.h"

#include <algorithm>
#include <cctype>

namespace smtpscope::sql {
namespace {

std::string_view cast_of(ParamType type) {
  switch (type) {
    case ParamType::int8: return "::int8";
    case ParamType::text: return "::text";
    case ParamType::float8: return "::float8";
    case ParamType::unknown: break;
  }
  return "";
}

// The end of a quoted part starting at `at` (the quote), doubled quotes
// inside; the whole rest when it is not closed.
std::size_t end_of_quoted(std::string_view sql, std::size_t at) {
  const char quote = sql[at];
  for (std::size_t i = at + 1; i < sql.size(); ++i) {
    if (sql[i] != quote) continue;
    if (i + 1 < sql.size() && sql[i + 1] == quote) {
      ++i;
      continue;
    }
    return i + 1;
  }
  return sql.size();
}

// The end of a comment starting at `at`, or `at` when none starts there.
std::size_t end_of_comment(std::string_view sql, std::size_t at) {
  if (sql.substr(at, 2) == "--") {
    const std::size_t newline = sql.find('\n', at);
    return newline == std::string_view::npos ? sql.size() : newline + 1;
  }
  if (sql.substr(at, 2) == "/*") {
    const std::size_t close = sql.find("*/", at + 2);
    return close == std::string_view::npos ? sql.size() : close + 2;
  }
  return at;
}

}  // namespace

TranslatedSql translate_placeholders(std::string_view sql, const std::vector<ParamType>& types) {
  TranslatedSql out;
  out.sql.reserve(sql.size() + 16);
  int largest = 0;
  std::size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    std::size_t skip = i;
    if (c == '\'' || c == '"') {
      skip = end_of_quoted(sql, i);
    } else {
      skip = end_of_comment(sql, i);
    }
    if (skip > i) {
      out.sql.append(sql.substr(i, skip - i));
      i = skip;
      continue;
    }
    if (c != '?') {
      out.sql += c;
      ++i;
      continue;
    }
    std::size_t digits = i + 1;
    while (digits < sql.size() && std::isdigit(static_cast<unsigned char>(sql[digits]))) ++digits;
    int index = largest + 1;
    if (digits > i + 1) {
      // SQLite limits ?N to 32766; a longer number is not ours to rewrite.
      const std::string_view number = sql.substr(i + 1, digits - i - 1);
      index = number.size() > 5 ? 0 : std::stoi(std::string(number));
    }
    if (index <= 0) {
      out.sql.append(sql.substr(i, digits - i));
      i = digits;
      continue;
    }
    largest = std::max(largest, index);
    auto found = std::find(out.order.begin(), out.order.end(), index);
    if (found == out.order.end()) {
      out.order.push_back(index);
      found = out.order.end() - 1;
    }
    out.sql += '$' + std::to_string(found - out.order.begin() + 1);
    const auto at = static_cast<std::size_t>(index - 1);
    out.sql += cast_of(at < types.size() ? types[at] : ParamType::unknown);
    i = digits;
  }
  return out;
}

}  // namespace smtpscope::sql
