// What a Postfix smtpd or postscreen log message says, as a typed record:
// the stage (connect, close, lost, timeout, error_limit, pipelining, reject,
// queued, non_smtp, illegal, tls, screen), the client NAME[ADDR]:PORT, the
// message's main text and its fields (disconnect counters such as rset=2 or
// rcpt=0/1, the STATE after which a connection was lost, reject details).
// Also what smtpd warns about a client (a failed AUTH: stage reject, action
// auth-failed, command AUTH, sasl_method, outcome failed, sasl_username
// when logged, the reason as argument; core has no auth stage yet), a TLS
// handshake that failed (stage tls, outcome failed; "lost connection after
// STARTTLS" gets tls=failed), cleanup's content rejects (stage reject with
// queue_id, command header|body and the header or body line as argument,
// dsn, reply; or smtpd's layout for END-OF-MESSAGE of a milter) and
// qmgr's "QID: from=<S>, size=N" (stage mail: queue_id, from, size, nrcpt;
// the ingester joins the last two to the smtpd session by queue id).
// Other messages are `skipped`; a recognised message whose shape is broken
// is `malformed`. Views point into the message; nothing is allocated.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "event.h"

namespace smtpscope::ingest {

struct Client {
  std::string_view name;
  std::string_view addr;
  std::optional<std::uint16_t> port;
};

struct Field {
  std::string_view name;
  std::string_view value;
};

struct LogRecord {
  Stage stage = Stage::unknown;
  Client client;
  std::string_view argument;
  std::array<Field, 32> fields{};
  std::size_t field_count = 0;

  void add(std::string_view name, std::string_view value);
};

enum class MessageKind { record, skipped, malformed };

struct ParsedMessage {
  MessageKind kind = MessageKind::skipped;
  LogRecord record;
};

// daemon: the program's last component ("smtpd", "postscreen", ...).
ParsedMessage parse_postfix_message(std::string_view daemon, std::string_view message);

// "name[addr]" or "name[addr]:port" (name may be empty, as postscreen logs)
// at the start of `text`: the address is the bracketed part that ends the
// client's word, so junk holding '[' stays in the name. On success `rest`
// is what follows.
bool parse_client(std::string_view text, Client& client, std::string_view& rest);

}  // namespace smtpscope::ingest
