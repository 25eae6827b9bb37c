#include "policy_request.h"

namespace smtpscope::policy {
namespace {

constexpr std::size_t context_bytes = 80;

// The first bytes of the line being refused: what is kept of it, then the
// new piece.
std::string context_of(const std::string& kept, std::string_view piece) {
  std::string context = kept.substr(0, context_bytes);
  context.append(piece.substr(0, context_bytes - context.size()));
  return context;
}

}  // namespace

std::string_view Request::get(std::string_view name) const {
  for (const auto& [key, value] : attributes) {
    if (key == name) return value;
  }
  return {};
}

std::string_view describe(ParseError error) {
  switch (error) {
    case ParseError::none: return "no error";
    case ParseError::line_without_equals: return "line without '='";
    case ParseError::line_too_long: return "line over the length limit";
    case ParseError::request_too_large: return "request over the size limit";
    case ParseError::too_many_attributes: return "too many attributes";
    case ParseError::nul_byte: return "NUL byte in request";
  }
  return "unknown error";
}

ParseError RequestParser::feed(std::string_view bytes, std::vector<Request>& out) {
  return consume(bytes, out, false);
}

ParseError RequestParser::feed_one(std::string_view& bytes, std::vector<Request>& out) {
  return consume(bytes, out, true);
}

ParseError RequestParser::consume(std::string_view& bytes, std::vector<Request>& out,
                                  bool stop_after_one) {
  if (failed_ != ParseError::none) return failed_;
  const std::size_t before = out.size();
  while (!bytes.empty()) {
    const std::size_t newline = bytes.find('\n');
    const std::string_view piece = bytes.substr(0, newline);
    if (piece.find('\0') != std::string_view::npos) {
      error_context_ = context_of(line_, piece);
      return failed_ = ParseError::nul_byte;
    }
    // Check the bounds before the line or request grows.
    if (line_.size() + piece.size() > limits_.max_line_bytes) {
      error_context_ = context_of(line_, piece);
      return failed_ = ParseError::line_too_long;
    }
    // The empty line that ends a request does not count towards its size.
    const bool empty_line = line_.empty() && piece.empty();
    if (!empty_line &&
        current_.bytes + line_.size() + piece.size() + 1 > limits_.max_request_bytes) {
      error_context_ = context_of(line_, piece);
      return failed_ = ParseError::request_too_large;
    }
    line_.append(piece);
    if (newline == std::string_view::npos) {
      bytes = {};
      break;
    }
    bytes.remove_prefix(newline + 1);
    if (ParseError error = take_line(out); error != ParseError::none) return failed_ = error;
    if (stop_after_one && out.size() > before) break;
  }
  return ParseError::none;
}

ParseError RequestParser::take_line(std::vector<Request>& out) {
  if (!line_.empty() && line_.back() == '\r') line_.pop_back();
  if (line_.empty()) {
    // An empty line ends a request; one before any attribute is ignored.
    if (!current_.attributes.empty()) {
      out.push_back(std::move(current_));
      current_ = Request{};
    }
    return ParseError::none;
  }
  const std::size_t equals = line_.find('=');
  if (equals == std::string::npos || equals == 0) {
    error_context_ = line_.substr(0, context_bytes);
    return ParseError::line_without_equals;
  }
  if (current_.attributes.size() >= limits_.max_attributes) {
    error_context_ = line_.substr(0, context_bytes);
    return ParseError::too_many_attributes;
  }
  current_.bytes += line_.size() + 1;
  // The line's buffer becomes the value: one allocation per line, not two.
  std::string name = line_.substr(0, equals);
  line_.erase(0, equals + 1);
  current_.attributes.emplace_back(std::move(name), std::move(line_));
  line_ = std::string();
  return ParseError::none;
}

}  // namespace smtpscope::policy
