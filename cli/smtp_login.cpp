#include "smtp_login.h"

#include <nlohmann/json.hpp>

namespace smtpscope::cli {

std::optional<SmtpLogin> login_at_mail(const EventRecord& event) {
  if (event.stage != "mail") return std::nullopt;
  const bool milter = event.source == "milter";
  const char* user_key = milter ? "{auth_authen}" : "sasl_username";
  const char* method_key = milter ? "{auth_type}" : "sasl_method";
  const auto attributes = nlohmann::json::parse(event.attributes_json, nullptr, false);
  if (!attributes.is_object()) return std::nullopt;
  auto text = [&](const char* key) {
    const auto found = attributes.find(key);
    return found != attributes.end() && found->is_string() ? found->get<std::string>()
                                                            : std::string();
  };
  SmtpLogin login{text(user_key), text(method_key)};
  if (login.user.empty()) return std::nullopt;
  return login;
}

}  // namespace smtpscope::cli
