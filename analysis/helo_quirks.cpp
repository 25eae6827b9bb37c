#include "helo_quirks.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace smtpscope::analysis {
namespace {

bool is_ip_address(std::string_view text) {
  const std::string copy(text);
  unsigned char buffer[16];
  return inet_pton(AF_INET, copy.c_str(), buffer) == 1 ||
         inet_pton(AF_INET6, copy.c_str(), buffer) == 1;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool valid_hostname_characters(std::string_view name) {
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

bool has_long_label(std::string_view name) {
  std::size_t label = 0;
  for (char c : name) {
    label = c == '.' ? 0 : label + 1;
    if (label > 63) return true;
  }
  return false;
}

// An address spelled into the name (192-0-2-1, 192.0.2.1.pool) or a typical
// dynamic-pool word, as reverse names of residential lines look.
bool dynamic_looking(std::string_view name) {
  const std::string text = lower(name);
  static constexpr std::array<std::string_view, 7> words = {"dyn",   "dhcp", "pool",  "dsl",
                                                           "cable", "ppp",  "dialup"};
  for (auto word : words) {
    if (text.find(word) != std::string::npos && text.find('.') != std::string::npos) return true;
  }
  int digit_groups = 0;
  bool in_digits = false;
  for (char c : text) {
    const bool digit = std::isdigit(static_cast<unsigned char>(c)) != 0;
    if (digit && !in_digits) ++digit_groups;
    in_digits = digit;
  }
  return digit_groups >= 4;
}

}  // namespace

std::string_view to_string(HeloQuirk quirk) {
  switch (quirk) {
    case HeloQuirk::empty: return "empty";
    case HeloQuirk::bare_ip: return "bare-ip";
    case HeloQuirk::address_literal: return "address-literal";
    case HeloQuirk::literal_mismatch: return "literal-mismatch";
    case HeloQuirk::non_fqdn: return "non-fqdn";
    case HeloQuirk::localhost: return "localhost";
    case HeloQuirk::our_name: return "our-name";
    case HeloQuirk::invalid_characters: return "invalid-characters";
    case HeloQuirk::over_long: return "over-long";
    case HeloQuirk::dynamic_looking: return "dynamic-looking";
    case HeloQuirk::name_mismatch: return "name-mismatch";
    case HeloQuirk::helo_not_ehlo: return "helo-not-ehlo";
    case HeloQuirk::changed_in_session: return "changed-in-session";
    case HeloQuirk::ptr_mismatch: return "ptr-mismatch";
    case HeloQuirk::unresolved_name: return "unresolved-name";
  }
  return "unknown";
}

std::vector<HeloQuirk> classify_helo(std::string_view helo, const HeloContext& context) {
  std::vector<HeloQuirk> quirks;
  if (context.protocol == "SMTP") quirks.push_back(HeloQuirk::helo_not_ehlo);
  if (helo.empty()) {
    quirks.push_back(HeloQuirk::empty);
    return quirks;
  }
  if (helo.size() > 255 || has_long_label(helo)) quirks.push_back(HeloQuirk::over_long);
  if (helo.front() == '[' && helo.back() == ']') {
    std::string_view inside = helo.substr(1, helo.size() - 2);
    if (inside.starts_with("IPv6:")) inside.remove_prefix(5);
    quirks.push_back(HeloQuirk::address_literal);
    if (!is_ip_address(inside)) {
      quirks.push_back(HeloQuirk::invalid_characters);
    } else if (inside != context.client_addr) {
      quirks.push_back(HeloQuirk::literal_mismatch);
    }
    if (!context.server_addr.empty() && inside == context.server_addr) {
      quirks.push_back(HeloQuirk::our_name);
    }
    return quirks;
  }
  if (is_ip_address(helo)) {
    quirks.push_back(HeloQuirk::bare_ip);
    if (!context.server_addr.empty() && helo == context.server_addr) {
      quirks.push_back(HeloQuirk::our_name);
    }
    return quirks;
  }
  const std::string name = lower(helo);
  if (!valid_hostname_characters(helo)) quirks.push_back(HeloQuirk::invalid_characters);
  if (name == "localhost" || name.starts_with("localhost.")) {
    quirks.push_back(HeloQuirk::localhost);
    return quirks;
  }
  if (!context.server_name.empty() && name == lower(context.server_name)) {
    quirks.push_back(HeloQuirk::our_name);
  }
  const bool fqdn = name.find('.') != std::string::npos && name.back() != '.';
  if (!fqdn) {
    quirks.push_back(HeloQuirk::non_fqdn);
    return quirks;
  }
  if (dynamic_looking(name)) quirks.push_back(HeloQuirk::dynamic_looking);
  if (!context.client_name.empty() && context.client_name != "unknown" &&
      lower(context.client_name) != name) {
    quirks.push_back(HeloQuirk::name_mismatch);
  }
  return quirks;
}

std::optional<HeloQuirk> classify_name_check(std::string_view ptr_check) {
  if (ptr_check == "mismatch") return HeloQuirk::ptr_mismatch;
  if (ptr_check == "unresolved") return HeloQuirk::unresolved_name;
  return std::nullopt;
}

}  // namespace smtpscope::analysis
