#include "smtp_client_message.h"

#include <utility>

#include "consume_prefix.h"

namespace smtpscope::ingest {
namespace {

// "while sending RCPT TO" -> "RCPT TO"; "while receiving the initial server
// greeting" -> "initial server greeting"; "while performing the EHLO handshake".
std::string_view state_of(std::string_view rest) {
  const std::size_t at = rest.find(" while ");
  if (at == std::string_view::npos) return {};
  std::string_view state = rest.substr(at + 7);
  for (std::string_view verb : {"sending ", "receiving the ", "receiving ", "performing the "}) {
    if (consume(state, verb)) break;
  }
  const std::size_t end = state.find(" -- ");
  return state.substr(0, end);
}

bool server(std::string_view text, RemoteRecord& r, std::string_view& rest) {
  Client c;
  if (!parse_client(text, c, rest)) return false;
  r.server_name = c.name;
  r.server_addr = c.addr;
  r.server_port = c.port;
  return true;
}

// Where a delivery that never reached a server (relay=none) was going: the
// server its reason names ("connect to mx.x[192.0.2.1]:25: Connection timed
// out", "host mx.x[192.0.2.1] refused to talk to me", "lost connection with
// mx.x[192.0.2.1]" after "delivery temporarily suspended: "), else the name that
// did not resolve ("Name service error for name=x.example type=MX"), else
// the recipient's domain; those two have no address.
void destination_of_undelivered(std::string_view reason, std::string_view recipient,
                                RemoteRecord& r) {
  std::string_view rest;
  for (std::string_view marker :
       {"connect to ", "host ", "lost connection with ", "conversation with "}) {
    for (std::size_t at = reason.find(marker); at != std::string_view::npos;
         at = reason.find(marker, at + 1)) {
      if ((at == 0 || reason[at - 1] == ' ') && server(reason.substr(at + marker.size()), r, rest)) {
        return;
      }
    }
  }
  if (const std::size_t name = reason.find("name="); name != std::string_view::npos) {
    std::string_view value = reason.substr(name + 5);
    r.server_name = value.substr(0, value.find_first_of(" :,"));
  } else {
    const std::size_t at = recipient.rfind('@');
    r.server_name = at == std::string_view::npos ? std::string_view{} : recipient.substr(at + 1);
  }
  r.server_addr = {};
  r.server_port.reset();
}

// "to=<b@x>, relay=mx.x[192.0.2.1]:25, delay=1.2, delays=..., dsn=4.4.2, status=deferred (reason)"
std::optional<RemoteRecord> status_line(std::string_view queue_id, std::string_view text) {
  RemoteRecord r;
  r.kind = "status";
  r.queue_id = queue_id;
  if (!consume(text, "to=<")) return std::nullopt;
  const std::size_t close = text.find('>');
  if (close == std::string_view::npos) return std::nullopt;
  r.recipient = text.substr(0, close);
  const std::size_t relay = text.find("relay=");
  if (relay == std::string_view::npos) return std::nullopt;
  std::string_view rest;
  const bool undelivered = text.substr(relay + 6).starts_with("none,");
  if (!undelivered && !server(text.substr(relay + 6), r, rest)) return std::nullopt;
  const std::size_t dsn = text.find(" dsn=");
  if (dsn != std::string_view::npos) {
    std::string_view value = text.substr(dsn + 5);
    r.dsn = value.substr(0, value.find(','));
  }
  const std::size_t status = text.find(" status=");
  if (status == std::string_view::npos) return std::nullopt;
  std::string_view value = text.substr(status + 8);
  r.status = value.substr(0, value.find(' '));
  const std::size_t open = value.find(" (");
  if (open != std::string_view::npos && value.back() == ')') {
    r.reason = value.substr(open + 2, value.size() - open - 3);
  }
  r.probe = r.status == "deliverable" || r.status == "undeliverable";
  r.state = state_of(r.reason);
  if (undelivered) destination_of_undelivered(r.reason, r.recipient, r);
  return r;
}

}  // namespace

std::optional<RemoteRecord> parse_smtp_client_message(std::string_view text) {
  std::string_view queue_id;
  if (const std::size_t colon = text.find(": ");
      colon != std::string_view::npos && colon >= 5 && colon <= 20 &&
      text.substr(0, colon).find_first_not_of("0123456789ABCDEFabcdefghijklmnopqrstuvwxyzGHIJKLMNOPQRSTUVWXYZ") ==
          std::string_view::npos) {
    queue_id = text.substr(0, colon);
    text.remove_prefix(colon + 2);
  }
  RemoteRecord r;
  r.queue_id = queue_id;
  std::string_view rest;
  if (text.starts_with("to=<")) return status_line(queue_id, text);
  // "lost connection with HOST[ADDR] while STATE" and "conversation with
  // HOST[ADDR] timed out while STATE" have the same shape.
  constexpr std::pair<std::string_view, std::string_view> broken_conversations[] = {
      {"lost connection with ", "lost"}, {"conversation with ", "timeout"}};
  for (const auto& [prefix, kind] : broken_conversations) {
    if (!consume(text, prefix)) continue;
    r.kind = kind;
    if (!server(text, r, rest)) return std::nullopt;
    r.state = state_of(rest);
    r.reason = text;
    return r;
  }
  if (consume(text, "host ")) {
    r.kind = "reply";
    if (!server(text, r, rest) || !consume(rest, " said: ")) return std::nullopt;
    r.reason = rest;
    const std::size_t in_reply = rest.rfind("(in reply to ");
    if (in_reply != std::string_view::npos) {
      std::string_view state = rest.substr(in_reply + 13);
      r.state = state.substr(0, state.find(" command"));
    }
    return r;
  }
  if (consume(text, "connect to ")) {
    r.kind = "connect";
    if (!server(text, r, rest)) return std::nullopt;
    r.reason = rest.starts_with(": ") ? rest.substr(2) : rest;
    return r;
  }
  if (server(text, r, rest) && consume(rest, " refused to talk to me: ")) {
    r.kind = "refused";
    r.reason = rest;
    return r;
  }
  return std::nullopt;
}

}  // namespace smtpscope::ingest
