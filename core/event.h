// The event model: one observed SMTP stage from one sensor. Sensors (milter,
// policy server, log reader) build Events and hand them to the Store; the
// Store's writer turns them into sessions, transactions and event rows.
// An Event is a plain value, cheap to move, owned by whoever holds it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace smtpscope {

enum class Source : std::uint8_t { milter, policy, log };

// Stages in the order an SMTP session can reach them. `close` ends a stream.
enum class Stage : std::uint8_t {
  connect,
  helo,
  mail,
  rcpt,
  data,
  header,
  eom,
  abort,
  unknown,
  close,
  vrfy,  // policy requests only: VRFY and ETRN are not milter stages
  etrn,
  // Log only: what Postfix logged and no other sensor sees.
  lost,         // lost connection after STATE
  timeout,      // timeout after STATE
  error_limit,  // too many errors after STATE
  pipelining,   // improper command pipelining after STATE
  reject,       // NOQUEUE/QID reject, warn, hold, milter-reject ... lines
  queued,       // QID: client= (first accepted recipient opened a queue file)
  non_smtp,     // non-SMTP command
  illegal,      // illegal address syntax
  tls,          // TLS connection established
  screen,       // postscreen verdicts (PREGREET, COMMAND PIPELINING, ...)
};

constexpr std::size_t stage_count = static_cast<std::size_t>(Stage::screen) + 1;

std::string_view to_string(Source source);
std::string_view to_string(Stage stage);
std::optional<Stage> parse_stage(std::string_view name);

struct Attribute {
  std::string name;
  std::string value;
};

struct Event {
  Source source = Source::milter;
  Stage stage = Stage::connect;
  std::int64_t time_us = 0;  // wall clock, microseconds since the epoch
  // Identifies the sensor-side connection this event belongs to, unique per
  // sensor process lifetime (e.g. "milter:4711:17"). Events of one stream
  // arrive in order.
  std::string stream;
  // 1-based ordinal of the mail transaction within the stream; 0 = none.
  std::uint32_t transaction = 0;
  // The stage's main argument: HELO name, address, command text, header.
  std::string argument;
  std::vector<Attribute> attributes;

  // Value of the first attribute with this name, if any.
  std::optional<std::string_view> attribute(std::string_view name) const;
  void add(std::string name, std::string value);
};

// Bytes of memory an Event holds: the object itself and the heap blocks its
// strings and attribute vector own (capacity, not length). Unchanged by a
// move, so a queue can add it on the way in and subtract it on the way out.
std::size_t memory_bytes(const Event& event);

}  // namespace smtpscope
