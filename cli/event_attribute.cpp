#include "event_attribute.h"

#include <nlohmann/json.hpp>

namespace smtpscope::cli {

std::string event_attribute(const EventRecord& event, const char* name) {
  const auto attributes = nlohmann::json::parse(event.attributes_json, nullptr, false);
  if (!attributes.is_object()) return "";
  const auto found = attributes.find(name);
  return found != attributes.end() && found->is_string() ? found->get<std::string>() : "";
}

}  // namespace smtpscope::cli
