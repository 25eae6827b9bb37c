// Fuzzes the policy request parser with bytes as Postfix's socket would
// deliver them, cut into reads of a size the first byte chooses. Invariants:
// no request breaks the limits, and each is complete (the parser never hands
// out a request before its empty line).
#include "fuzz_input.h"
#include "policy_request.h"

using namespace smtpscope;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const policy::Limits limits{128, 2048, 32};
  const std::size_t read_size = 1 + data[0] % 97;
  std::string_view rest = fuzz::as_text(data + 1, size - 1);
  policy::RequestParser parser(limits);
  std::vector<policy::Request> requests;
  while (!rest.empty()) {
    const std::string_view chunk = rest.substr(0, read_size);
    rest.remove_prefix(chunk.size());
    if (parser.feed(chunk, requests) != policy::ParseError::none) break;
  }
  for (const auto& request : requests) {
    fuzz::require(request.attributes.size() <= limits.max_attributes, "attribute count");
    fuzz::require(request.bytes <= limits.max_request_bytes, "request size");
    for (const auto& [name, value] : request.attributes) {
      fuzz::require(name.size() + 1 + value.size() <= limits.max_line_bytes, "line length");
      fuzz::require(name.find('\n') == std::string::npos && value.find('\n') == std::string::npos,
                    "newline inside an attribute");
    }
  }
  return 0;
}
