#include "libmilter_glue.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <vector>

#include "negotiation.h"

namespace smtpscope::milter {
namespace {

Recorder* recorder = nullptr;

class LibmilterMacros final : public MacroSource {
 public:
  explicit LibmilterMacros(SMFICTX* ctx) : ctx_(ctx) {}
  std::optional<std::string> get(std::string_view name) const override {
    const std::string key(name);
    const char* value = smfi_getsymval(ctx_, const_cast<char*>(key.c_str()));
    if (value == nullptr) return std::nullopt;
    return std::string(value);
  }

 private:
  SMFICTX* ctx_;
};

ConnectionContext* context_of(SMFICTX* ctx) {
  return static_cast<ConnectionContext*>(smfi_getpriv(ctx));
}

// Answer for a stage: no reply where the MTA granted it, else continue.
sfsistat reply(const ConnectionContext* c, unsigned long no_reply_step) {
  return c && (c->no_reply_steps & no_reply_step) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

// The context, created on first use when negotiation did not run (an MTA
// speaking an older protocol version).
ConnectionContext* ensure_context(SMFICTX* ctx) {
  if (auto* c = context_of(ctx)) return c;
  auto fresh = recorder->new_connection(0);
  if (smfi_setpriv(ctx, fresh.get()) != MI_SUCCESS) return nullptr;
  return fresh.release();
}

std::vector<std::string_view> arguments(char** argv) {
  std::vector<std::string_view> args;
  for (char** a = argv; a && *a; ++a) args.emplace_back(*a);
  return args;
}

// Port 0 means the MTA did not know it; the {client_port} macro may.
PeerAddress peer_address(const _SOCK_ADDR* address) {
  PeerAddress peer;
  if (address == nullptr) return peer;
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (address->sa_family == AF_INET) {
    const auto* in4 = reinterpret_cast<const sockaddr_in*>(address);
    if (inet_ntop(AF_INET, &in4->sin_addr, text.data(), text.size())) peer.address = text.data();
    if (in4->sin_port != 0) peer.port = ntohs(in4->sin_port);
  } else if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    if (inet_ntop(AF_INET6, &in6->sin6_addr, text.data(), text.size())) peer.address = text.data();
    if (in6->sin6_port != 0) peer.port = ntohs(in6->sin6_port);
  }
  return peer;
}

sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long /*f2*/,
                      unsigned long /*f3*/, unsigned long* pf0, unsigned long* pf1,
                      unsigned long* pf2, unsigned long* pf3) {
  auto* old = context_of(ctx);
  delete old;
  const Negotiated wanted = negotiate(f0, f1, recorder->config().milter);
  auto context = recorder->new_connection(wanted.steps);
  if (smfi_setpriv(ctx, context.get()) == MI_SUCCESS) context.release();
  *pf0 = wanted.actions;
  *pf1 = wanted.steps;
  *pf2 = 0;
  *pf3 = 0;
  return SMFIS_CONTINUE;
}

sfsistat on_connect(SMFICTX* ctx, char* hostname, _SOCK_ADDR* address) {
  auto* c = ensure_context(ctx);
  if (c) recorder->connect(*c, hostname ? hostname : "", peer_address(address), LibmilterMacros(ctx));
  return reply(c, SMFIP_NR_CONN);
}

sfsistat on_helo(SMFICTX* ctx, char* name) {
  auto* c = ensure_context(ctx);
  if (c) recorder->helo(*c, name ? name : "", LibmilterMacros(ctx));
  return reply(c, SMFIP_NR_HELO);
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
  auto* c = ensure_context(ctx);
  if (c) recorder->mail(*c, arguments(argv), LibmilterMacros(ctx));
  return reply(c, SMFIP_NR_MAIL);
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
  auto* c = ensure_context(ctx);
  if (c) recorder->rcpt(*c, arguments(argv), LibmilterMacros(ctx));
  return reply(c, SMFIP_NR_RCPT);
}

sfsistat on_data(SMFICTX* ctx) {
  auto* c = ensure_context(ctx);
  if (c) recorder->data(*c, LibmilterMacros(ctx));
  return reply(c, SMFIP_NR_DATA);
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
  auto* c = ensure_context(ctx);
  if (c) recorder->header(*c, name ? name : "", value ? value : "");
  return reply(c, SMFIP_NR_HDR);
}

sfsistat on_body(SMFICTX* ctx, unsigned char* /*chunk*/, size_t length) {
  auto* c = ensure_context(ctx);
  if (c) recorder->body(*c, length);
  return reply(c, SMFIP_NR_BODY);
}

sfsistat on_eom(SMFICTX* ctx) {
  if (auto* c = ensure_context(ctx)) recorder->end_of_message(*c, LibmilterMacros(ctx));
  return SMFIS_CONTINUE;  // the end of message always takes a reply
}

sfsistat on_abort(SMFICTX* ctx) {
  if (auto* c = context_of(ctx)) recorder->abort(*c);
  return SMFIS_CONTINUE;  // ignored by libmilter
}

sfsistat on_unknown(SMFICTX* ctx, const char* command) {
  auto* c = ensure_context(ctx);
  if (c) recorder->unknown(*c, command ? command : "");
  return reply(c, SMFIP_NR_UNKN);
}

// May run without a prior connect (libmilter docs), so priv may be null.
sfsistat on_close(SMFICTX* ctx) {
  if (auto* c = context_of(ctx)) {
    recorder->close(*c);
    delete c;
    smfi_setpriv(ctx, nullptr);
  }
  return SMFIS_CONTINUE;
}

}  // namespace

void install_recorder(Recorder* r) { recorder = r; }

smfiDesc milter_description() {
  static char name[] = "smtpscope";
  smfiDesc description{};
  description.xxfi_name = name;
  description.xxfi_version = SMFI_VERSION;
  description.xxfi_flags = 0;
  description.xxfi_connect = on_connect;
  description.xxfi_helo = on_helo;
  description.xxfi_envfrom = on_envfrom;
  description.xxfi_envrcpt = on_envrcpt;
  description.xxfi_header = on_header;
  description.xxfi_eoh = nullptr;
  description.xxfi_body = on_body;
  description.xxfi_eom = on_eom;
  description.xxfi_abort = on_abort;
  description.xxfi_close = on_close;
  description.xxfi_unknown = on_unknown;
  description.xxfi_data = on_data;
  description.xxfi_negotiate = on_negotiate;
  return description;
}

// libmilter's stop state: exported by libmilter (shared and static) though
// its header, libmilter.h, is not installed; MILTER_STOP is 1 there
// (0 running, 2 aborted by an error or SIGINT).
extern "C" int mi_stop();

bool stop_was_requested() {
  constexpr int milter_stop = 1;
  return mi_stop() == milter_stop;
}

}  // namespace smtpscope::milter
