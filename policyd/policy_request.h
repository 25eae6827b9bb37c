// The Postfix policy delegation protocol, reading side: an incremental parser
// that turns the bytes of one connection into requests (name=value lines
// ended by an empty line). Every read is bounded: line length, request size
// and attribute count are checked before anything grows. A protocol error is
// a value; after one, the connection is to be closed (Postfix then retries).
// Not thread-safe: one parser per connection.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace smtpscope::policy {

struct Limits {
  std::size_t max_line_bytes = 64 * 1024;
  std::size_t max_request_bytes = 1024 * 1024;
  std::size_t max_attributes = 1024;
};

struct Request {
  // In arrival order; a name may repeat (Postfix allows it), unknown names
  // are kept.
  std::vector<std::pair<std::string, std::string>> attributes;
  std::size_t bytes = 0;
  // The first value of name, or empty.
  std::string_view get(std::string_view name) const;
};

enum class ParseError { none, line_without_equals, line_too_long, request_too_large,
                        too_many_attributes, nul_byte };

std::string_view describe(ParseError error);

class RequestParser {
 public:
  explicit RequestParser(Limits limits) : limits_(limits) {}

  // Consumes bytes; complete requests are appended to `out`. Returns the
  // first protocol error; the parser is unusable after one.
  ParseError feed(std::string_view bytes, std::vector<Request>& out);
  // Like feed(), but stops after the first complete request: the bytes not
  // consumed stay in `bytes` (for a server that stops answering while its
  // unsent output is full). Consumes everything when no request completes.
  ParseError feed_one(std::string_view& bytes, std::vector<Request>& out);

  // True when part of a request has been received (for stalled clients).
  bool mid_request() const { return !line_.empty() || !current_.attributes.empty(); }
  // The offending text of the last error, for the (escaped) log line.
  const std::string& error_context() const { return error_context_; }

 private:
  ParseError consume(std::string_view& bytes, std::vector<Request>& out, bool stop_after_one);
  ParseError take_line(std::vector<Request>& out);

  Limits limits_;
  std::string line_;
  Request current_;
  std::string error_context_;
  ParseError failed_ = ParseError::none;
};

}  // namespace smtpscope::policy
