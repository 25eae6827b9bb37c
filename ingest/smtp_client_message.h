// What Postfix's smtp client (Postfix as a client of remote servers) logs
// about a remote server: lost connections and timeouts "while sending X",
// refusals, replies "in reply to X command", connect failures, and each
// delivery's status (sent, deferred, bounced, and the address verification
// results deliverable/undeliverable, which mark probes). Views point into
// the message; nothing is allocated.
#pragma once

#include <optional>
#include <string_view>

#include "postfix_message.h"

namespace smtpscope::ingest {

struct RemoteRecord {
  std::string_view kind;    // lost, timeout, refused, reply, connect, status
  std::string_view server_name;
  std::string_view server_addr;
  std::optional<std::uint16_t> server_port;
  std::string_view state;   // "RCPT TO", "MAIL FROM", "message body", "initial server greeting"
  std::string_view status;  // sent, deferred, bounced, deliverable, undeliverable
  std::string_view queue_id;
  std::string_view recipient;
  std::string_view dsn;
  std::string_view reason;  // the text in parentheses, or the reply
  bool probe = false;       // an address verification probe (deliverable/undeliverable)
};

// nullopt when the message says nothing about a remote server.
std::optional<RemoteRecord> parse_smtp_client_message(std::string_view message);

}  // namespace smtpscope::ingest
