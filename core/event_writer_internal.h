// Internals shared by event_writer.cpp and event_writer_policy.cpp: the
// prepared statements and the conversions of attribute text.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "event_writer.h"

namespace smtpscope {

inline std::optional<std::int64_t> to_number(std::optional<std::string_view> text) {
  if (!text || text->empty()) return std::nullopt;
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc() || end != text->data() + text->size()) return std::nullopt;
  return value;
}

inline std::optional<std::string> to_text(std::optional<std::string_view> text) {
  if (!text || text->empty()) return std::nullopt;
  return std::string(*text);
}

struct EventWriter::Statements {
  sqlite::Statement insert_session;
  sqlite::Statement record_helo;
  sqlite::Statement record_rcpt;
  sqlite::Statement record_data;
  sqlite::Statement deliver_transaction;
  sqlite::Statement abort_transaction;
  sqlite::Statement close_session;
  sqlite::Statement insert_event;
  sqlite::Statement record_protocol;
  sqlite::Statement record_policy_message;
  sqlite::Statement close_from_log;
  sqlite::Statement insert_set;
};

}  // namespace smtpscope
