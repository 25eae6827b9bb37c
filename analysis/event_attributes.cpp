#include "event_attributes.h"

#include <nlohmann/json.hpp>
#include <optional>

namespace smtpscope::analysis {
namespace {

// A repeated name keeps its last value (as nlohmann does) in its first
// place; objects are small (a dozen names), so a scan beats a sort.
void add(std::vector<EventAttributes::Item>& items, std::string name, std::string value,
         bool is_string) {
  for (auto& item : items) {
    if (item.name == name) {
      item.value = std::move(value);
      item.is_string = is_string;
      return;
    }
  }
  items.push_back({std::move(name), std::move(value), is_string});
}

// A JSON string at `at` (its opening quote) in the fast path's subset:
// printable ASCII and the escapes \" \\ \/ \b \f \n \r \t. Moves `at` past
// the closing quote; nothing when the string is outside that subset.
std::optional<std::string> fast_string(std::string_view json, std::size_t& at) {
  if (at >= json.size() || json[at] != '"') return std::nullopt;
  std::string out;
  std::size_t i = at + 1;
  while (i < json.size()) {
    std::size_t run = i;  // plain characters, appended at once
    while (run < json.size()) {
      const auto c = static_cast<unsigned char>(json[run]);
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
      ++run;
    }
    out.append(json.data() + i, run - i);
    i = run;
    if (i >= json.size()) break;
    const auto c = static_cast<unsigned char>(json[i]);
    if (c == '"') {
      at = i + 1;
      return out;
    }
    if (c != '\\' || ++i >= json.size()) return std::nullopt;  // control or non-ASCII byte
    switch (json[i]) {
      case '"': out += '"'; break;
      case '\\': out += '\\'; break;
      case '/': out += '/'; break;
      case 'b': out += '\b'; break;
      case 'f': out += '\f'; break;
      case 'n': out += '\n'; break;
      case 'r': out += '\r'; break;
      case 't': out += '\t'; break;
      default: return std::nullopt;  // \u and anything else: the full parser
    }
    ++i;
  }
  return std::nullopt;
}

// The compact object {"name":"value",...} the store writes, or nothing.
std::optional<std::vector<EventAttributes::Item>> fast_object(std::string_view json) {
  std::vector<EventAttributes::Item> items;
  items.reserve(16);
  if (json.size() < 2 || json.front() != '{') return std::nullopt;
  std::size_t at = 1;
  if (json[at] == '}') return at + 1 == json.size() ? std::optional(items) : std::nullopt;
  for (;;) {
    auto name = fast_string(json, at);
    if (!name || at >= json.size() || json[at] != ':') return std::nullopt;
    ++at;
    auto value = fast_string(json, at);
    if (!value || at >= json.size()) return std::nullopt;
    add(items, std::move(*name), std::move(*value), true);
    if (json[at] == '}') return at + 1 == json.size() ? std::optional(items) : std::nullopt;
    if (json[at] != ',') return std::nullopt;
    ++at;
  }
}

std::vector<EventAttributes::Item> full_object(std::string_view json) {
  std::vector<EventAttributes::Item> items;
  const auto parsed = nlohmann::json::parse(json, nullptr, false);
  if (!parsed.is_object()) return items;
  for (const auto& [name, value] : parsed.items()) {
    add(items, name, value.is_string() ? value.get<std::string>() : "", value.is_string());
  }
  return items;
}

}  // namespace

EventAttributes::EventAttributes(std::string_view json) {
  if (auto fast = fast_object(json)) {
    items_ = std::move(*fast);
  } else {
    items_ = full_object(json);
  }
}

const EventAttributes::Item* EventAttributes::find(std::string_view name) const {
  for (const Item& item : items_) {
    if (item.name == name) return &item;
  }
  return nullptr;
}

const std::string* EventAttributes::string_value(std::string_view name) const {
  const Item* item = find(name);
  return item && item->is_string ? &item->value : nullptr;
}

std::string EventAttributes::text(std::string_view name) const {
  const std::string* value = string_value(name);
  return value ? *value : std::string();
}

}  // namespace smtpscope::analysis
