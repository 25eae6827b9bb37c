// An event's attributes as the analysis reads them: the JSON object of the
// events view (flat, string values) taken apart once into names and values,
// without building a JSON document (nlohmann's std::map per event was a
// fifth of the analysis profile). It reads exactly what nlohmann::json::parse
// reads: text the fast path does not know (numbers, nesting, \u escapes,
// bytes above 0x7F, white space) goes through nlohmann; text that is not a
// JSON object gives no attributes; a repeated name keeps its last value.
// Lookups scan (an event has a dozen attributes).
// Pure; a value object, not shared between threads while being built.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace smtpscope::analysis {

class EventAttributes {
 public:
  struct Item {
    std::string name;
    std::string value;  // empty when not a string
    bool is_string = false;
  };

  explicit EventAttributes(std::string_view json);

  // The value of `name` when it is a string, else empty.
  std::string text(std::string_view name) const;
  // The value of `name` when it is a string, else nullptr.
  const std::string* string_value(std::string_view name) const;
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  // Every attribute, each name once, in the order the text first names it.
  const std::vector<Item>& items() const { return items_; }

 private:
  const Item* find(std::string_view name) const;
  std::vector<Item> items_;
};

}  // namespace smtpscope::analysis
