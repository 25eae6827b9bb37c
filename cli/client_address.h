// What a --client option accepts: a client as smtpscope records it, an IPv4
// or IPv6 address (192.0.2.1, 2001:db8::1) or "unknown", Postfix's word for
// a client whose address it could not tell (`connect from unknown[unknown]`).
// Anything else, the empty string included, is a usage error: such a filter
// either matches no session or, left empty, every client, so a report would
// silently be about some other client.
#pragma once

#include <string_view>

#include "result.h"

namespace smtpscope::cli {

Status check_client_address(std::string_view text);

}  // namespace smtpscope::cli
