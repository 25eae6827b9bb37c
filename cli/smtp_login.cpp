#include "smtp_login.h"

#include "event_attribute.h"

namespace smtpscope::cli {

std::optional<SmtpLogin> login_at_mail(const EventRecord& event) {
  if (event.stage != "mail") return std::nullopt;
  const bool milter = event.source == "milter";
  SmtpLogin login{event_attribute(event, milter ? "{auth_authen}" : "sasl_username"),
                  event_attribute(event, milter ? "{auth_type}" : "sasl_method")};
  if (login.user.empty()) return std::nullopt;
  return login;
}

}  // namespace smtpscope::cli
