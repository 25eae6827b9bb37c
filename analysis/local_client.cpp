#include "local_client.h"

#include <algorithm>
#include <cctype>

#include "event_attributes.h"

namespace smtpscope::analysis {
namespace {

bool all_digits(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return std::isdigit(c) != 0;
  });
}

// xforward in the counters of a log event, or a tag naming a port.
bool shows_reinjection(const EventRecord& e) {
  if (e.source != "log") return false;
  const EventAttributes attributes(e.attributes_json);
  if (e.stage == "close" && attributes.contains("xforward")) return true;
  const std::string* program = attributes.string_value("program");
  return program && tag_names_a_port(*program);
}

}  // namespace

bool is_loopback_address(std::string_view addr) {
  return addr == "127.0.0.1" || addr == "::1" || addr == "::ffff:127.0.0.1";
}

bool tag_names_a_port(std::string_view program) {
  const auto last = program.rfind('/');
  if (last == std::string_view::npos) return false;
  std::string_view rest = program.substr(0, last);  // without the program name
  while (!rest.empty()) {
    const auto slash = rest.rfind('/');
    const std::string_view part = slash == std::string_view::npos ? rest : rest.substr(slash + 1);
    const auto colon = part.rfind(':');
    if (all_digits(colon == std::string_view::npos ? part : part.substr(colon + 1))) return true;
    if (slash == std::string_view::npos) break;
    rest = rest.substr(0, slash);
  }
  return false;
}

bool is_local_reinjection(const SessionRecord& session) {
  return is_loopback_address(session.client_addr) &&
         std::any_of(session.events.begin(), session.events.end(), shows_reinjection);
}

}  // namespace smtpscope::analysis
