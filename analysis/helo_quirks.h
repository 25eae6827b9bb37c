// Classifies a client's HELO/EHLO argument: the quirks mail admins look for
// (empty, bare IP, address literal and whether it matches the client, not a
// FQDN, localhost, our own name or address, invalid characters, over-long,
// dynamic-looking, mismatch with Postfix's verified client name), using only
// what Postfix already knows (no DNS queries); and the client's name as
// smtpd's PTR check left it (its PTR name does not resolve back to the
// address: ptr-mismatch, or does not resolve at all: unresolved-name; the
// client is then "unknown" to Postfix). Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpscope::analysis {

enum class HeloQuirk {
  empty,
  bare_ip,               // 192.0.2.1 without brackets
  address_literal,       // [192.0.2.1]
  literal_mismatch,      // an address literal that is not the client's address
  non_fqdn,              // a single label: "workstation"
  localhost,             // localhost, localhost.localdomain
  our_name,              // the server's own host name or address (forgery)
  invalid_characters,    // outside letters, digits, '-', '.', (and [] for literals)
  over_long,             // more than 255 bytes, or a label over 63
  dynamic_looking,       // 192-0-2-1.dyn.isp.example, dhcp-..., pool-...
  name_mismatch,         // a FQDN other than Postfix's verified client name
  helo_not_ehlo,         // greeted with HELO (old or minimal client)
  changed_in_session,    // a second, different HELO in the same session
  ptr_mismatch,          // the PTR name resolves, but not to the client's address
  unresolved_name,       // the PTR name does not resolve (or the lookup failed); the last
};

std::string_view to_string(HeloQuirk quirk);

struct HeloContext {
  std::string client_addr;
  std::string client_name;    // Postfix's verified name, or "unknown"
  std::string server_name;    // our host name ($myhostname, the j macro)
  std::string server_addr;
  std::string protocol;       // SMTP (HELO) or ESMTP (EHLO), if known
};

// The quirks of one HELO argument (possibly several).
std::vector<HeloQuirk> classify_helo(std::string_view helo, const HeloContext& context);

// The quirk of smtpd's PTR check as the log records it (ptr_check=
// "mismatch" or "unresolved"); nothing for any other value.
std::optional<HeloQuirk> classify_name_check(std::string_view ptr_check);

}  // namespace smtpscope::analysis
