// Who an event says the SMTP client logged in as (SMTP AUTH): the milter's
// {auth_authen}/{auth_type} macros or the policy server's sasl_username/
// sasl_method attributes, which Postfix sends from MAIL on. Both renderers
// show it at MAIL. The strings are client text: callers escape them.
#pragma once

#include <optional>
#include <string>

#include "session_reader.h"

namespace smtpscope::cli {

struct SmtpLogin {
  std::string user;
  std::string method;  // PLAIN, LOGIN, ...; may be empty
};

// The login a MAIL event carries; nullopt for other stages and anonymous
// clients.
std::optional<SmtpLogin> login_at_mail(const EventRecord& event);

}  // namespace smtpscope::cli
