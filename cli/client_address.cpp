#include "client_address.h"

#include <arpa/inet.h>
#include <fmt/format.h>

#include <string>

#include "text_escape.h"

namespace smtpscope::cli {

Status check_client_address(std::string_view text) {
  if (text.empty()) {
    return Status::error("an empty address names no client (give an IPv4 or IPv6 address, "
                         "e.g. 192.0.2.1 or 2001:db8::1)");
  }
  const std::string address(text);
  unsigned char parsed[sizeof(in6_addr)];
  const bool plain = address.find('\0') == std::string::npos;
  if (plain && (address == "unknown" || inet_pton(AF_INET, address.c_str(), parsed) == 1 ||
      inet_pton(AF_INET6, address.c_str(), parsed) == 1)) {
    return Status::ok();
  }
  return Status::error(fmt::format(
      "\"{}\" is not a client address (give an IPv4 or IPv6 address, e.g. 192.0.2.1 or "
      "2001:db8::1, or \"unknown\")",
      printable(text, 100)));
}

}  // namespace smtpscope::cli
