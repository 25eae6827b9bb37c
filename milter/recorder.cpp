#include "recorder.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "text_escape.h"

namespace smtpscope::milter {
namespace {

// The stages at which Postfix sends each macro (postfix-facts.md 1.6). A
// configured macro is read only at its stage, so it is stored once.
bool macro_belongs_to(std::string_view macro, Stage stage) {
  static constexpr std::array<std::string_view, 12> connect = {
      "j", "_", "v", "{daemon_name}", "{daemon_addr}", "{daemon_port}", "{client_addr}",
      "{client_port}", "{client_name}", "{client_ptr}", "{client_resolve}",
      "{client_connections}"};
  static constexpr std::array<std::string_view, 5> helo = {
      "{tls_version}", "{cipher}", "{cipher_bits}", "{cert_subject}", "{cert_issuer}"};
  static constexpr std::array<std::string_view, 6> mail = {
      "{auth_type}", "{auth_authen}", "{auth_author}", "{mail_addr}", "{mail_host}",
      "{mail_mailer}"};
  static constexpr std::array<std::string_view, 3> rcpt = {"{rcpt_addr}", "{rcpt_host}",
                                                          "{rcpt_mailer}"};
  auto in = [macro](const auto& list) {
    return std::find(list.begin(), list.end(), macro) != list.end();
  };
  switch (stage) {
    case Stage::connect: return in(connect);
    case Stage::helo: return in(helo);
    case Stage::mail: return in(mail);
    case Stage::rcpt: return in(rcpt);
    default: return false;  // the queue id `i` is always read, as queue_id
  }
}

bool same_header_name(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

std::string join_esmtp(const std::vector<std::string_view>& args) {
  std::string joined;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (i > 1) joined += ' ';
    joined += args[i];
  }
  return joined;
}

}  // namespace

Recorder::Recorder(std::shared_ptr<const Config> config, const Clock& clock, EventSink& sink)
    : config_(std::move(config)), clock_(clock), sink_(sink) {}

std::unique_ptr<ConnectionContext> Recorder::new_connection(unsigned long no_reply_steps) {
  auto context = std::make_unique<ConnectionContext>();
  context->config = config_;
  context->stream = fmt::format("milter:{}:{}", ::getpid(), next_stream_.fetch_add(1));
  context->no_reply_steps = no_reply_steps;
  return context;
}

std::string Recorder::bound(const ConnectionContext& c, std::string_view raw) const {
  return std::string(bounded(raw, c.config->milter.max_value_bytes));
}

Event Recorder::make_event(const ConnectionContext& c, Stage stage,
                           std::string_view argument) const {
  Event event;
  event.source = Source::milter;
  event.stage = stage;
  event.time_us = clock_.now_us();
  event.stream = c.stream;
  event.transaction = c.in_transaction ? c.transaction_count : 0;
  event.argument = bound(c, argument);
  return event;
}

void Recorder::add_macros(const ConnectionContext& c, Event& event, Stage stage,
                          const MacroSource& macros) const {
  for (const auto& name : c.config->milter.macros) {
    if (!macro_belongs_to(name, stage)) continue;
    if (auto value = macros.get(name)) event.add(name, bound(c, *value));
  }
}

void Recorder::export_metrics(MetricsRegistry& registry) {
  static constexpr std::array<std::string_view, 11> names = {
      "connect", "helo", "mail", "rcpt", "data", "header", "body", "eom", "abort", "unknown",
      "close"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    callbacks_[i] = &registry.counter("smtpscope_milter_callbacks_total",
                                      "Milter callbacks from the MTA, by stage.",
                                      {{"stage", std::string(names[i])}});
  }
  sessions_open_ = &registry.gauge("smtpscope_sessions_open",
                                   "SMTP sessions open now, as the sensor sees them.",
                                   {{"source", "milter"}});
}

void Recorder::submit(Event event) {
  if (spdlog::should_log(spdlog::level::debug)) {
    spdlog::debug("milter stage={} stream={} transaction={} arg={}", to_string(event.stage),
                  event.stream, event.transaction, log_quoted(event.argument, 200));
  }
  if (!sink_.submit(std::move(event))) dropped_.fetch_add(1, std::memory_order_relaxed);
}

void Recorder::connect(ConnectionContext& c, std::string_view hostname, const PeerAddress& peer,
                       const MacroSource& macros) {
  count(Callback::connect);
  if (!c.connected && sessions_open_) sessions_open_->add(1);
  c.connected = true;
  Event event = make_event(c, Stage::connect, hostname);
  add_macros(c, event, Stage::connect, macros);
  auto macro = [&](std::string_view name) { return macros.get(name).value_or(""); };
  std::string address = peer.address.empty() ? macro("{client_addr}") : peer.address;
  std::string port = peer.port ? std::to_string(*peer.port) : macro("{client_port}");
  event.add("client_addr", bound(c, address));
  if (!port.empty()) event.add("client_port", bound(c, port));
  // The hostname argument is "[addr]" when Postfix could not verify a name.
  std::string name = macro("{client_name}");
  if (name.empty()) name = hostname.starts_with('[') ? "unknown" : std::string(hostname);
  event.add("client_name", bound(c, name));
  if (auto ptr = macros.get("{client_ptr}")) event.add("client_ptr", bound(c, *ptr));
  if (auto server = macros.get("{daemon_addr}")) event.add("server_addr", bound(c, *server));
  if (auto server_port = macros.get("{daemon_port}")) {
    event.add("server_port", bound(c, *server_port));
  }
  submit(std::move(event));
}

void Recorder::helo(ConnectionContext& c, std::string_view name, const MacroSource& macros) {
  count(Callback::helo);
  Event event = make_event(c, Stage::helo, name);
  add_macros(c, event, Stage::helo, macros);
  submit(std::move(event));
}

void Recorder::mail(ConnectionContext& c, const std::vector<std::string_view>& args,
                    const MacroSource& macros) {
  count(Callback::mail);
  c.transaction_count += 1;
  c.in_transaction = true;
  c.transaction = TransactionContext{};
  Event event = make_event(c, Stage::mail, args.empty() ? std::string_view() : args[0]);
  if (args.size() > 1) event.add("esmtp", bound(c, join_esmtp(args)));
  add_macros(c, event, Stage::mail, macros);
  submit(std::move(event));
}

void Recorder::rcpt(ConnectionContext& c, const std::vector<std::string_view>& args,
                    const MacroSource& macros) {
  count(Callback::rcpt);
  if (c.transaction.recipients_recorded >= c.config->milter.max_recipients) {
    c.transaction.recipients_not_recorded += 1;
    return;
  }
  c.transaction.recipients_recorded += 1;
  Event event = make_event(c, Stage::rcpt, args.empty() ? std::string_view() : args[0]);
  if (args.size() > 1) event.add("esmtp", bound(c, join_esmtp(args)));
  add_macros(c, event, Stage::rcpt, macros);
  // Postfix marks a recipient it rejected (sent via SMFIP_RCPT_REJ) with
  // {rcpt_mailer}=error, the enhanced status in {rcpt_host} and the reason
  // in {rcpt_addr}.
  const bool rejected = macros.get("{rcpt_mailer}") == "error";
  event.add("rejected", rejected ? "1" : "0");
  if (rejected) {
    event.add("status", bound(c, macros.get("{rcpt_host}").value_or("")));
    event.add("reason", bound(c, macros.get("{rcpt_addr}").value_or("")));
  }
  if (auto queue_id = macros.get("i")) event.add("queue_id", bound(c, *queue_id));
  submit(std::move(event));
}

void Recorder::data(ConnectionContext& c, const MacroSource& macros) {
  count(Callback::data);
  Event event = make_event(c, Stage::data, "");
  if (auto queue_id = macros.get("i")) event.add("queue_id", bound(c, *queue_id));
  submit(std::move(event));
}

void Recorder::header(ConnectionContext& c, std::string_view name, std::string_view value) {
  count(Callback::header);
  const auto& kept = c.config->milter.headers;
  const bool wanted = std::any_of(kept.begin(), kept.end(), [name](const std::string& k) {
    return same_header_name(k, name);
  });
  if (!wanted || c.transaction.headers_recorded >= c.config->milter.max_headers) return;
  c.transaction.headers_recorded += 1;
  // Header values arrive without their leading space (no SMFIP_HDR_LEADSPC).
  std::string line = std::string(name) + ": " + std::string(value);
  Event event = make_event(c, Stage::header, line);
  event.add("name", bound(c, name));
  submit(std::move(event));
}

void Recorder::body(ConnectionContext& c, std::size_t bytes) {
  count(Callback::body);
  c.transaction.body_bytes += bytes;
}

void Recorder::end_of_message(ConnectionContext& c, const MacroSource& macros) {
  count(Callback::eom);
  Event event = make_event(c, Stage::eom, "");
  if (auto queue_id = macros.get("i")) event.add("queue_id", bound(c, *queue_id));
  if (c.config->milter.record_body_size) {
    event.add("body_bytes", std::to_string(c.transaction.body_bytes));
  }
  if (c.transaction.recipients_not_recorded > 0) {
    event.add("recipients_not_recorded", std::to_string(c.transaction.recipients_not_recorded));
  }
  submit(std::move(event));
  c.in_transaction = false;
}

void Recorder::abort(ConnectionContext& c) {
  count(Callback::abort);
  Event event = make_event(c, Stage::abort, "");
  if (c.transaction.recipients_not_recorded > 0) {
    event.add("recipients_not_recorded", std::to_string(c.transaction.recipients_not_recorded));
  }
  submit(std::move(event));
  c.in_transaction = false;
}

void Recorder::unknown(ConnectionContext& c, std::string_view command) {
  count(Callback::unknown);
  submit(make_event(c, Stage::unknown, command));
}

void Recorder::close(ConnectionContext& c) {
  // A milter connection the MTA closed before any SMTP connect event (the
  // client left at once) is not a session we can attribute to anyone.
  count(Callback::close);
  if (!c.connected) {
    spdlog::debug("milter stage=close stream={} note=\"no connect event\"", c.stream);
    return;
  }
  if (sessions_open_) sessions_open_->add(-1);
  Event event = make_event(c, Stage::close, "");
  event.transaction = 0;
  submit(std::move(event));
}

}  // namespace smtpscope::milter
