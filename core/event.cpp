#include "event.h"

#include <array>

namespace smtpscope {
namespace {

constexpr std::array<std::string_view, stage_count> stage_names = {
    "connect", "helo",    "mail",     "rcpt",    "data",    "header",      "eom",
    "abort",   "unknown", "close",    "vrfy",    "etrn",    "lost",        "timeout",
    "error_limit", "pipelining", "reject", "queued", "non_smtp", "illegal", "tls", "screen"};

// A string's heap block, if it has one: short strings live inside the object.
std::size_t heap_bytes(const std::string& text) {
  static const std::size_t inline_capacity = std::string().capacity();
  return text.capacity() > inline_capacity ? text.capacity() + 1 : 0;
}

}  // namespace

static_assert(stage_names.size() == stage_count);

std::string_view to_string(Source source) {
  switch (source) {
    case Source::milter: return "milter";
    case Source::policy: return "policy";
    case Source::log: return "log";
  }
  return "unknown-source";
}

std::string_view to_string(Stage stage) { return stage_names.at(static_cast<std::size_t>(stage)); }

std::optional<Stage> parse_stage(std::string_view name) {
  for (std::size_t i = 0; i < stage_names.size(); ++i) {
    if (stage_names[i] == name) return static_cast<Stage>(i);
  }
  return std::nullopt;
}

std::optional<std::string_view> Event::attribute(std::string_view name) const {
  for (const auto& a : attributes) {
    if (a.name == name) return a.value;
  }
  return std::nullopt;
}

std::size_t memory_bytes(const Event& event) {
  std::size_t bytes = sizeof(Event) + heap_bytes(event.stream) + heap_bytes(event.argument) +
                      event.attributes.capacity() * sizeof(Attribute);
  for (const Attribute& a : event.attributes) bytes += heap_bytes(a.name) + heap_bytes(a.value);
  return bytes;
}

void Event::add(std::string name, std::string value) {
  attributes.push_back({std::move(name), std::move(value)});
}

}  // namespace smtpscope
