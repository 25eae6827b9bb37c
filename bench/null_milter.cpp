// The comparison milter of the end-to-end benchmark (bench/e2e_bench.py):
// the naive way to write a milter with libmilter. It registers every
// callback, asks for no protocol options (so Postfix sends every stage,
// headers and body included, and waits for a reply to each), records
// nothing and answers CONTINUE. Usage: null_milter unix:/path | inet:PORT@HOST
// NULL_MILTER_MODE picks how much it asks Postfix for: naive (the default,
// above), quiet, or deaf (see the negotiate callbacks).
#include <libmilter/mfapi.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace {

sfsistat go_on(SMFICTX*) { return SMFIS_CONTINUE; }
sfsistat on_connect(SMFICTX*, char*, _SOCK_ADDR*) { return SMFIS_CONTINUE; }
sfsistat on_text(SMFICTX*, char*) { return SMFIS_CONTINUE; }
sfsistat on_envelope(SMFICTX*, char**) { return SMFIS_CONTINUE; }
sfsistat on_header(SMFICTX*, char*, char*) { return SMFIS_CONTINUE; }
sfsistat on_body(SMFICTX*, unsigned char*, size_t) { return SMFIS_CONTINUE; }
sfsistat on_unknown(SMFICTX*, const char*) { return SMFIS_CONTINUE; }

// A negotiate callback that accepts Postfix's actions and asks for the
// protocol steps in Wanted (those Postfix offers).
template <unsigned long Wanted>
sfsistat negotiate(SMFICTX*, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                   unsigned long* pf0, unsigned long* pf1, unsigned long* pf2,
                   unsigned long* pf3) {
  *pf0 = f0;
  *pf1 = f1 & Wanted;
  *pf2 = 0;
  *pf3 = 0;
  return SMFIS_CONTINUE;
}
// quiet: the envelope stages without replies (SMFIP_NR_*), no headers or
// body: the cheapest milter that still sees every envelope stage.
constexpr unsigned long quiet = SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |
                                SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NOHDRS | SMFIP_NOBODY |
                                SMFIP_NOEOH;
// deaf: no stage at all (SMFIP_NO*): Postfix still connects, negotiates and
// sends end-of-message and quit. What attaching any milter costs Postfix.
constexpr unsigned long deaf = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT |
                               SMFIP_NODATA | SMFIP_NOUNKNOWN | SMFIP_NOHDRS | SMFIP_NOBODY |
                               SMFIP_NOEOH;

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: null_milter unix:/path | inet:PORT@HOST\n");
    return 2;
  }
  smfiDesc description{};
  description.xxfi_name = const_cast<char*>("null_milter");
  description.xxfi_version = SMFI_VERSION;
  description.xxfi_connect = on_connect;
  description.xxfi_helo = on_text;
  description.xxfi_envfrom = on_envelope;
  description.xxfi_envrcpt = on_envelope;
  description.xxfi_data = go_on;
  description.xxfi_header = on_header;
  description.xxfi_eoh = go_on;
  description.xxfi_body = on_body;
  description.xxfi_eom = go_on;
  description.xxfi_abort = go_on;
  description.xxfi_close = go_on;
  description.xxfi_unknown = on_unknown;
  const char* chosen = std::getenv("NULL_MILTER_MODE");
  const std::string_view mode = chosen ? chosen : "naive";
  if (mode == "quiet") {
    description.xxfi_negotiate = negotiate<quiet>;
  } else if (mode == "deaf") {
    description.xxfi_negotiate = negotiate<deaf>;
  } else if (mode != "naive") {
    std::fprintf(stderr, "null_milter: NULL_MILTER_MODE must be naive, quiet or deaf\n");
    return 2;
  }
  if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(description) != MI_SUCCESS ||
      smfi_opensocket(true) != MI_SUCCESS) {
    std::fprintf(stderr, "null_milter: cannot listen on %s\n", argv[1]);
    return 1;
  }
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
