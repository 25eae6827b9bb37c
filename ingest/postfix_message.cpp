#include "postfix_message.h"

#include <array>
#include <charconv>
#include <optional>

#include "consume_prefix.h"

namespace smtpscope::ingest {
namespace {

using Kind = MessageKind;

ParsedMessage skipped() { return ParsedMessage{Kind::skipped, {}}; }
ParsedMessage malformed() { return ParsedMessage{Kind::malformed, {}}; }

std::string_view take_word(std::string_view& text) {
  const std::size_t space = text.find(' ');
  const std::string_view word = text.substr(0, space);
  text.remove_prefix(space == std::string_view::npos ? text.size() : space);
  return word;
}

bool is_queue_id(std::string_view word) {
  if (word.size() < 5 || word.size() > 32) return false;
  for (char c : word) {
    const bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
    if (!alnum) return false;
  }
  return true;
}

// "connect from CLIENT"
ParsedMessage connect_line(std::string_view text) {
  ParsedMessage out{Kind::record, {}};
  out.record.stage = Stage::connect;
  std::string_view rest;
  if (!parse_client(text, out.record.client, rest)) return malformed();
  return out;
}

// "disconnect from CLIENT ehlo=1 mail=0/1 ... commands=3/5"
ParsedMessage disconnect_line(std::string_view text) {
  ParsedMessage out{Kind::record, {}};
  out.record.stage = Stage::close;
  std::string_view rest;
  if (!parse_client(text, out.record.client, rest)) return malformed();
  while (!rest.empty()) {
    if (rest.front() == ' ') {
      rest.remove_prefix(1);
      continue;
    }
    const std::string_view token = take_word(rest);
    const std::size_t equals = token.find('=');
    if (equals == std::string_view::npos || equals == 0) return malformed();
    out.record.add(token.substr(0, equals), token.substr(equals + 1));
  }
  return out;
}

// "STATE[ (N bytes)] from CLIENT[: TEXT]" after "lost connection after " etc.
ParsedMessage after_state_line(Stage stage, std::string_view text) {
  ParsedMessage out{Kind::record, {}};
  out.record.stage = stage;
  const std::string_view state = take_word(text);
  if (state.empty()) return malformed();
  out.record.add("after", state);
  if (consume(text, " (")) {
    const std::size_t close = text.find(" bytes)");
    if (close == std::string_view::npos) return malformed();
    out.record.add("bytes", text.substr(0, close));
    text.remove_prefix(close + 7);
  }
  if (!consume(text, " from ")) return malformed();
  std::string_view rest;
  if (!parse_client(text, out.record.client, rest)) return malformed();
  if (consume(rest, ": ")) out.record.argument = rest;
  // The client asked for TLS and got "220 Ready" but no session came of it.
  if (stage == Stage::lost && state == "STARTTLS") out.record.add("tls", "failed");
  return out;
}

bool is_action(std::string_view word) {
  static constexpr std::string_view actions[] = {
      "reject", "reject_warning", "warn", "hold", "discard", "milter-reject", "milter-hold",
      "milter-discard", "filter", "redirect", "bcc", "info", "delay", "hangup"};
  for (auto a : actions) {
    if (word == a) return true;
  }
  return false;
}

// The details Postfix appends to a reject (log_whatsup() in smtpd_check.c,
// smtpd_whatsup() in smtpd.c): "TEXT; from=<S> to=<R> proto=P helo=<H>",
// each only when known, always in this order; postscreen writes all four,
// separated by ", ". S, R and H are the client's text and may hold '>',
// spaces and "key=": a value ends at the '>' (a bare value: at the space)
// that is followed by a separator and a later key, or by the end.
constexpr std::array<std::string_view, 4> detail_keys = {"from=", "to=", "proto=", "helo="};

// Whether `text`, what follows a value of detail_keys[key], ends it.
bool ends_detail(std::string_view text, std::size_t key) {
  if (text.empty()) return true;
  for (std::string_view separator : {", ", " "}) {
    if (!text.starts_with(separator)) continue;
    const std::string_view next = text.substr(separator.size());
    for (std::size_t later = key + 1; later < detail_keys.size(); ++later) {
      if (next.starts_with(detail_keys[later])) return true;
    }
  }
  return false;
}

constexpr std::size_t proto_key = 2;  // a bare word; the others are bracketed

// The value of detail_keys[key] at the start of `text` (just after "key="),
// or nullopt if no end fits; `text` is left after it.
std::optional<std::string_view> detail_value(std::string_view& text, std::size_t key) {
  if (key != proto_key && text.starts_with('<')) {
    for (std::size_t close = text.find('>'); close != std::string_view::npos;
         close = text.find('>', close + 1)) {
      if (ends_detail(text.substr(close + 1), key)) {
        const std::string_view value = text.substr(1, close - 1);
        text.remove_prefix(close + 1);
        return value;
      }
    }
    return std::nullopt;
  }
  // Bare: "proto=ESMTP", or a value some log tool stripped of its brackets.
  for (std::size_t end = text.find_first_of(" ,");; end = text.find_first_of(" ,", end + 1)) {
    const std::size_t stop = end == std::string_view::npos ? text.size() : end;
    if (ends_detail(text.substr(stop), key)) {
      const std::string_view value = text.substr(0, stop);
      text.remove_prefix(stop);
      return value;
    }
    if (end == std::string_view::npos) return std::nullopt;
  }
}

struct Details {
  std::array<std::optional<std::string_view>, detail_keys.size()> values;
  bool complete = false;  // the whole text had the layout
};

// "from=<S> to=<R> proto=P helo=<H>" (any of them, in order) to the end of `text`.
Details parse_details(std::string_view text) {
  Details out;
  std::size_t key = 0;
  while (key < detail_keys.size() && !text.starts_with(detail_keys[key])) ++key;
  while (key < detail_keys.size()) {
    text.remove_prefix(detail_keys[key].size());
    out.values[key] = detail_value(text, key);
    if (!out.values[key]) return out;
    if (text.empty()) {
      out.complete = true;
      return out;
    }
    text.remove_prefix(text.starts_with(", ") ? 2 : 1);  // ends_detail checked it
    while (++key < detail_keys.size() && !text.starts_with(detail_keys[key])) {
    }
  }
  return out;
}

// Where the details begin in "REPLY; from=<...> ...": the first "; KEY="
// after which the rest has their layout (the reply text may quote client
// text too, but comes first). At most a few are tried, so a line full of
// "; from=" costs linear time; failing all, the first is used for what it has.
std::size_t details_start(std::string_view rest, Details& details) {
  constexpr int max_tries = 8;
  std::size_t first = std::string_view::npos;
  int tries = 0;
  for (std::size_t at = rest.find("; "); at != std::string_view::npos && tries < max_tries;
       at = rest.find("; ", at + 1)) {
    const std::string_view tail = rest.substr(at + 2);
    bool keyed = false;
    for (std::string_view key : detail_keys) keyed = keyed || tail.starts_with(key);
    if (!keyed) continue;
    ++tries;
    Details parsed = parse_details(tail);
    if (first == std::string_view::npos) {
      first = at;
      details = parsed;
    }
    if (parsed.complete) {
      details = parsed;
      return at;
    }
  }
  return first;
}

// After "QID: " or "NOQUEUE: ": "ACTION: CMD from CLIENT: REPLY; from=<a> to=<b> proto=P helo=<h>"
ParsedMessage reject_line(std::string_view queue_id, std::string_view action, std::string_view text) {
  ParsedMessage out{Kind::record, {}};
  out.record.stage = Stage::reject;
  out.record.add("action", action);
  if (!queue_id.empty()) out.record.add("queue_id", queue_id);
  const std::string_view command = take_word(text);
  if (command.empty() || !consume(text, " from ")) return malformed();
  out.record.add("command", command);
  std::string_view rest;
  if (!parse_client(text, out.record.client, rest) || !consume(rest, ": ")) return malformed();
  Details details;
  const std::size_t split = details_start(rest, details);
  const std::string_view reply = rest.substr(0, split);
  out.record.argument = reply;
  if (reply.size() >= 4 && reply[3] == ' ' && (reply[0] == '4' || reply[0] == '5')) {
    out.record.add("code", reply.substr(0, 3));
  }
  for (std::size_t key = 0; key < detail_keys.size(); ++key) {
    if (!details.values[key]) continue;
    out.record.add(detail_keys[key].substr(0, detail_keys[key].size() - 1), *details.values[key]);
  }
  return out;
}

// "QID: client=CLIENT[, sasl_method=..., orig_client=...]"
ParsedMessage queued_line(std::string_view queue_id, std::string_view text) {
  ParsedMessage out{Kind::record, {}};
  out.record.stage = Stage::queued;
  std::string_view rest;
  if (!parse_client(text, out.record.client, rest)) return malformed();
  if (!queue_id.empty()) out.record.add("queue_id", queue_id);
  while (consume(rest, ", ")) {
    const std::size_t equals = rest.find('=');
    const std::size_t next = rest.find(", ");
    if (equals == std::string_view::npos || (next != std::string_view::npos && equals > next)) {
      break;
    }
    out.record.add(rest.substr(0, equals), rest.substr(equals + 1, next == std::string_view::npos
                                                                       ? std::string_view::npos
                                                                       : next - equals - 1));
    rest.remove_prefix(next == std::string_view::npos ? rest.size() : next);
  }
  return out;
}

// "(Anonymous|Untrusted|Trusted|Verified) TLS connection established from CLIENT: TLSv1.3 with cipher X ..."
ParsedMessage tls_line(std::string_view trust, std::string_view text) {
  ParsedMessage out{Kind::record, {}};
  out.record.stage = Stage::tls;
  out.record.add("trust", trust);
  std::string_view rest;
  if (!parse_client(text, out.record.client, rest) || !consume(rest, ": ")) return malformed();
  out.record.argument = rest;
  out.record.add("tls_version", take_word(rest));
  if (consume(rest, " with cipher ")) out.record.add("cipher", take_word(rest));
  return out;
}

// "SSL_accept error from CLIENT: REASON" (tls_server_start() failed; smtps
// wrapper mode or after STARTTLS): a TLS handshake that did not complete.
ParsedMessage tls_failure(std::string_view text) {
  ParsedMessage out{Kind::record, {}};
  out.record.stage = Stage::tls;
  out.record.add("outcome", "failed");
  std::string_view rest;
  if (!parse_client(text, out.record.client, rest)) return malformed();
  if (consume(rest, ": ")) out.record.argument = rest;
  return out;
}

// After "warning: ": "CLIENT: SASL METHOD authentication failed: REASON" and,
// since Postfix 3.x when the client named one, ", sasl_username=USER" (the
// last such suffix: REASON is the SASL library's text). Another warning
// is skipped. A failed AUTH is logged as a reject of AUTH (see the header).
ParsedMessage sasl_failure(std::string_view text) {
  ParsedMessage out{Kind::record, {}};
  std::string_view rest;
  if (!parse_client(text, out.record.client, rest) || !consume(rest, ": SASL ")) return skipped();
  const std::string_view method = take_word(rest);
  if (method.empty() || !consume(rest, " authentication failed")) return skipped();
  out.record.stage = Stage::reject;
  out.record.add("action", "auth-failed");
  out.record.add("command", "AUTH");
  out.record.add("sasl_method", method);
  out.record.add("outcome", "failed");
  if (consume(rest, ": ")) {
    constexpr std::string_view user_key = ", sasl_username=";
    const std::size_t user = rest.find(user_key);  // REASON is the server's, USER the client's
    if (user != std::string_view::npos) {
      out.record.add("sasl_username", rest.substr(user + user_key.size()));
      rest = rest.substr(0, user);
    }
    out.record.argument = rest;
  }
  return out;
}

ParsedMessage queue_prefixed(std::string_view queue_id, std::string_view text) {
  if (consume(text, "client=")) return queued_line(queue_id, text);
  // Postfix 3.10+ prefixes these with the queue id or NOQUEUE.
  if (consume(text, "lost connection after ")) return after_state_line(Stage::lost, text);
  if (consume(text, "timeout after ")) return after_state_line(Stage::timeout, text);
  if (consume(text, "too many errors after ")) return after_state_line(Stage::error_limit, text);
  const std::size_t colon = text.find(": ");
  if (colon != std::string_view::npos && is_action(text.substr(0, colon))) {
    return reject_line(queue_id, text.substr(0, colon), text.substr(colon + 2));
  }
  return skipped();
}

ParsedMessage smtpd_message(std::string_view text) {
  if (consume(text, "connect from ")) return connect_line(text);
  if (consume(text, "disconnect from ")) return disconnect_line(text);
  if (consume(text, "lost connection after ")) return after_state_line(Stage::lost, text);
  if (consume(text, "timeout after ")) return after_state_line(Stage::timeout, text);
  if (consume(text, "too many errors after ")) return after_state_line(Stage::error_limit, text);
  if (consume(text, "improper command pipelining after ")) {
    return after_state_line(Stage::pipelining, text);
  }
  if (consume(text, "warning: ")) {
    ParsedMessage out{Kind::record, {}};
    std::string_view rest;
    if (consume(text, "non-SMTP command from ")) {
      out.record.stage = Stage::non_smtp;
      if (!parse_client(text, out.record.client, rest) || !consume(rest, ": ")) return malformed();
      out.record.argument = rest;
      return out;
    }
    if (ParsedMessage sasl = sasl_failure(text); sasl.kind != Kind::skipped) return sasl;
    if (consume(text, "Illegal address syntax from ")) {
      out.record.stage = Stage::illegal;
      if (!parse_client(text, out.record.client, rest) || !consume(rest, " in ")) return malformed();
      out.record.add("command", take_word(rest));
      if (consume(rest, " command: ")) out.record.argument = rest;
      return out;
    }
    return skipped();
  }
  if (consume(text, "SSL_accept error from ")) return tls_failure(text);
  for (std::string_view trust : {"Anonymous", "Untrusted", "Trusted", "Verified"}) {
    std::string_view rest = text;
    if (consume(rest, trust) && (consume(rest, " TLS connection established from ") ||
                                 consume(rest, " TLS connection reused from "))) {
      return tls_line(trust, rest);
    }
  }
  if (consume(text, "NOQUEUE: ")) return queue_prefixed({}, text);
  const std::size_t colon = text.find(": ");
  if (colon != std::string_view::npos && is_queue_id(text.substr(0, colon))) {
    return queue_prefixed(text.substr(0, colon), text.substr(colon + 2));
  }
  return skipped();
}

bool is_verdict_word(std::string_view word) {
  if (word.empty()) return false;
  for (char c : word) {
    if (!((c >= 'A' && c <= 'Z') || c == '-')) return false;
  }
  return true;
}

// postscreen's "CONNECT from [ADDR]:PORT to [ADDR]:PORT": the connection's
// start, observed (smtpd's "connect from" follows only if it passes).
ParsedMessage postscreen_connect(std::string_view text) {
  ParsedMessage out{Kind::record, {}};
  out.record.stage = Stage::connect;
  std::string_view rest;
  if (!parse_client(text, out.record.client, rest)) return malformed();
  Client server;
  std::string_view after;
  if (consume(rest, " to ") && parse_client(rest, server, after)) {
    out.record.add("server_addr", server.addr);
    if (server.port) {
      const std::string_view port_text = rest.substr(rest.rfind(':') + 1);
      out.record.add("server_port", port_text.substr(0, port_text.find(' ')));
    }
  }
  return out;
}

// Verdicts after which postscreen itself ends the connection (smtpd never
// sees it): its dummy SMTP engine's DISCONNECT, the client's HANGUP, a
// command limit.
bool ends_connection(std::string_view verdict) {
  return verdict == "DISCONNECT" || verdict == "HANGUP" ||
         (verdict.starts_with("COMMAND ") && verdict.ends_with(" LIMIT"));
}

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  if (text.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    char c = text[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != prefix[i]) return false;
  }
  return true;
}

// The HELO name in the client's bytes postscreen quotes (PREGREET, COMMAND
// PIPELINING, BARE NEWLINE): "EHLO ylmf-pc\r\n", or "after CMD: EHLO x".
// Postscreen writes CR and LF as the two characters "\r" and "\n".
std::string_view helo_in_payload(std::string_view payload) {
  if (payload.starts_with("after ")) {
    const std::size_t colon = payload.find(": ");
    if (colon == std::string_view::npos) return {};
    payload.remove_prefix(colon + 2);
  }
  if (!starts_with_nocase(payload, "EHLO ") && !starts_with_nocase(payload, "HELO ")) return {};
  payload.remove_prefix(5);
  while (!payload.empty() && payload.front() == ' ') payload.remove_prefix(1);
  return payload.substr(0, payload.find_first_of(" \\\r\n"));
}

// postscreen: "PREGREET 20 after 0 from [ADDR]:PORT: EHLO x", "COMMAND PIPELINING
// from [ADDR]:PORT after EHLO: ...", "PASS NEW [ADDR]:PORT", "DNSBL rank 3 for
// [ADDR]:PORT", "CONNECT from [ADDR]:PORT to [ADDR]:PORT", "HANGUP after 0.5 from ..."
// CONNECT is the session's connect; DISCONNECT, HANGUP and COMMAND ... LIMIT
// its close (stage close, no counters: the verdict is kept as `verdict`).
ParsedMessage postscreen_message(std::string_view text) {
  if (consume(text, "NOQUEUE: ")) return queue_prefixed({}, text);
  if (consume(text, "CONNECT from ")) return postscreen_connect(text);
  const std::size_t bracket = text.find('[');
  if (bracket == std::string_view::npos) return skipped();
  std::string_view words = text.substr(0, bracket);
  std::size_t verdict_end = 0;
  for (std::string_view scan = words; !scan.empty();) {
    while (!scan.empty() && scan.front() == ' ') scan.remove_prefix(1);
    const std::string_view word = take_word(scan);
    if (!is_verdict_word(word)) break;
    verdict_end = static_cast<std::size_t>(word.data() + word.size() - text.data());
  }
  if (verdict_end == 0) return skipped();
  ParsedMessage out{Kind::record, {}};
  out.record.stage = Stage::screen;
  out.record.add("verdict", text.substr(0, verdict_end));
  std::string_view detail = words.substr(verdict_end);
  while (!detail.empty() && detail.front() == ' ') detail.remove_prefix(1);
  for (std::string_view joiner : {"from ", "for "}) {
    if (detail.ends_with(joiner)) detail.remove_suffix(joiner.size());
  }
  while (!detail.empty() && detail.back() == ' ') detail.remove_suffix(1);
  if (!detail.empty()) out.record.add("detail", detail);
  std::string_view rest;
  if (!parse_client(text.substr(bracket), out.record.client, rest)) return malformed();
  while (!rest.empty() && (rest.front() == ' ' || rest.front() == ':')) rest.remove_prefix(1);
  out.record.argument = rest;
  if (const std::string_view helo = helo_in_payload(rest); !helo.empty()) {
    out.record.add("helo", helo);
  }
  if (ends_connection(out.record.fields[0].value)) out.record.stage = Stage::close;
  return out;
}

// Where cleanup's reply text begins in "...helo=<H>: 5.7.1 TEXT": the first
// ": " followed by a DSN (cleanup prepends one when the rule's text has none).
std::size_t dsn_text_start(std::string_view text) {
  for (std::size_t at = text.find(": "); at != std::string_view::npos; at = text.find(": ", at + 1)) {
    const std::string_view t = text.substr(at + 2);
    if (t.size() >= 5 && (t[0] == '2' || t[0] == '4' || t[0] == '5') && t[1] == '.' && t[2] >= '0' &&
        t[2] <= '9') {
      return at;
    }
  }
  return std::string_view::npos;
}

// cleanup_act_log(): after "QID: ACTION: ", "header|body CONTENT from CLIENT;
// from=<S> to=<R> proto=P helo=<H>: DSN TEXT". CONTENT (at most 200 bytes)
// is the argument (what was rejected, as a milter's header event has it),
// "DSN TEXT" the field reply (it comes last here, unlike smtpd's rejects).
// CONTENT and the details are the client's; CLIENT is name[addr] or "local". The
// client is the first " from X[Y];" that parses: one planted in CONTENT
// misnames it here, but the ingester joins by queue id, not by it.
ParsedMessage content_line(std::string_view queue_id, std::string_view action,
                           std::string_view what, std::string_view text) {
  ParsedMessage out{Kind::record, {}};
  out.record.stage = Stage::reject;
  out.record.add("action", action);
  out.record.add("queue_id", queue_id);
  out.record.add("command", what);
  constexpr int max_tries = 8;
  int tries = 0;
  std::string_view after;
  for (std::size_t at = text.find(" from "); at != std::string_view::npos && tries < max_tries;
       at = text.find(" from ", at + 1), ++tries) {
    std::string_view rest;
    Client client;
    const std::string_view candidate = text.substr(at + 6);
    if (candidate.starts_with("local;")) {
      rest = candidate.substr(5);
    } else if (!parse_client(candidate, client, rest) || !rest.starts_with(';')) {
      continue;
    }
    out.record.client = client;
    out.record.argument = text.substr(0, at);
    after = rest.substr(1);
    break;
  }
  if (after.data() == nullptr) return malformed();
  if (after.starts_with(' ')) after.remove_prefix(1);
  const std::size_t reply = dsn_text_start(after);
  if (reply != std::string_view::npos) {
    const std::string_view reply_text = after.substr(reply + 2);
    out.record.add("dsn", reply_text.substr(0, reply_text.find(' ')));
    out.record.add("reply", reply_text);
    after = after.substr(0, reply);
  }
  const Details details = parse_details(after);
  for (std::size_t key = 0; key < detail_keys.size(); ++key) {
    if (!details.values[key]) continue;
    out.record.add(detail_keys[key].substr(0, detail_keys[key].size() - 1), *details.values[key]);
  }
  return out;
}

// cleanup's verdicts that stop a message: "QID: reject|discard|hold: header|body
// ...", "QID: milter-reject|milter-discard|milter-hold: END-OF-MESSAGE from
// CLIENT: 5.7.1 TEXT; from=<S> ..." (smtpd_milters run in cleanup). The rest
// of what cleanup says (message-id, info/warning/redirect hits) is skipped.
ParsedMessage cleanup_message(std::string_view text) {
  const std::size_t colon = text.find(": ");
  if (colon == std::string_view::npos || !is_queue_id(text.substr(0, colon))) return skipped();
  const std::string_view queue_id = text.substr(0, colon);
  text.remove_prefix(colon + 2);
  const std::size_t action_end = text.find(": ");
  if (action_end == std::string_view::npos) return skipped();
  const std::string_view action = text.substr(0, action_end);
  text.remove_prefix(action_end + 2);
  if (action == "reject" || action == "discard" || action == "hold") {
    for (std::string_view what : {"header", "body"}) {
      std::string_view rest = text;
      if (consume(rest, what) && consume(rest, " ")) return content_line(queue_id, action, what, rest);
    }
    return skipped();
  }
  if (action == "milter-reject" || action == "milter-discard" || action == "milter-hold") {
    return reject_line(queue_id, action, text);
  }
  return skipped();
}

// qmgr: "QID: from=<S>, size=N, nrcpt=M (queue active)", the envelope of a
// message entering the active queue (again at each retry); the record's
// stage is mail, its fields queue_id, from, size and nrcpt. S is the
// client's and may hold ">, ": it ends at the last ">, size=".
ParsedMessage qmgr_message(std::string_view text) {
  const std::size_t colon = text.find(": from=<");
  if (colon == std::string_view::npos || !is_queue_id(text.substr(0, colon))) return skipped();
  ParsedMessage out{Kind::record, {}};
  out.record.stage = Stage::mail;
  out.record.add("queue_id", text.substr(0, colon));
  text.remove_prefix(colon + 8);
  const std::size_t end = text.rfind(">, size=");
  if (end == std::string_view::npos) return skipped();  // "status=expired, returned to sender"
  out.record.add("from", text.substr(0, end));
  text.remove_prefix(end + 8);
  const std::size_t comma = text.find(',');
  out.record.add("size", text.substr(0, comma));
  if (comma != std::string_view::npos) {
    text.remove_prefix(comma);
    if (consume(text, ", nrcpt=")) out.record.add("nrcpt", text.substr(0, text.find(' ')));
  }
  return out;
}

}  // namespace

void LogRecord::add(std::string_view name, std::string_view value) {
  if (field_count < fields.size()) fields[field_count++] = Field{name, value};
}

bool parse_client(std::string_view text, Client& client, std::string_view& rest) {
  // The client is one word; its address is the bracketed part ending it
  // (then maybe ":PORT" and the ':' or ',' of what follows). A name is a
  // validated hostname or "unknown", so a '[' in it is junk that stays name.
  const std::string_view word = text.substr(0, text.find(' '));
  const std::size_t close = word.rfind(']');
  if (close == std::string_view::npos) return false;
  const std::size_t open = word.rfind('[', close);
  if (open == std::string_view::npos || close == open + 1 ||
      word.substr(open, close - open).find(']') != std::string_view::npos) {
    return false;
  }
  client.name = text.substr(0, open);
  client.addr = text.substr(open + 1, close - open - 1);
  rest = text.substr(close + 1);
  client.port.reset();
  if (rest.size() >= 2 && rest[0] == ':' && rest[1] >= '0' && rest[1] <= '9') {
    std::size_t end = 1;
    while (end < rest.size() && rest[end] >= '0' && rest[end] <= '9') ++end;
    unsigned port = 0;
    const auto [ptr, ec] = std::from_chars(rest.data() + 1, rest.data() + end, port);
    if (ec != std::errc() || port > 65535) return false;
    client.port = static_cast<std::uint16_t>(port);
    rest.remove_prefix(end);
  }
  return true;
}

ParsedMessage parse_postfix_message(std::string_view daemon, std::string_view message) {
  if (daemon == "smtpd") return smtpd_message(message);
  if (daemon == "postscreen") return postscreen_message(message);
  if (daemon == "cleanup") return cleanup_message(message);
  if (daemon == "qmgr") return qmgr_message(message);
  return skipped();
}

}  // namespace smtpscope::ingest
