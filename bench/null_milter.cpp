// The comparison milter of the end-to-end benchmark (bench/e2e_bench.py):
// the naive way to write a milter with libmilter. It registers every
// callback, asks for no protocol options (so Postfix sends every stage,
// headers and body included, and waits for a reply to each), records
// nothing and answers CONTINUE. Usage: null_milter unix:/path | inet:PORT@HOST
#include <libmilter/mfapi.h>

#include <cstdio>
#include <cstdlib>

namespace {

sfsistat go_on(SMFICTX*) { return SMFIS_CONTINUE; }
sfsistat on_connect(SMFICTX*, char*, _SOCK_ADDR*) { return SMFIS_CONTINUE; }
sfsistat on_text(SMFICTX*, char*) { return SMFIS_CONTINUE; }
sfsistat on_envelope(SMFICTX*, char**) { return SMFIS_CONTINUE; }
sfsistat on_header(SMFICTX*, char*, char*) { return SMFIS_CONTINUE; }
sfsistat on_body(SMFICTX*, unsigned char*, size_t) { return SMFIS_CONTINUE; }
sfsistat on_unknown(SMFICTX*, const char*) { return SMFIS_CONTINUE; }

// With NULL_MILTER_QUIET=1: the cheapest milter possible, no replies
// (SMFIP_NR_*) and no headers or body, to measure Postfix's own floor.
sfsistat quiet_negotiate(SMFICTX*, unsigned long f0, unsigned long f1, unsigned long, unsigned long,
                         unsigned long* pf0, unsigned long* pf1, unsigned long* pf2,
                         unsigned long* pf3) {
  *pf0 = f0;
  *pf1 = f1 & (SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT | SMFIP_NR_DATA |
               SMFIP_NR_UNKN | SMFIP_NOHDRS | SMFIP_NOBODY | SMFIP_NOEOH);
  *pf2 = 0;
  *pf3 = 0;
  return SMFIS_CONTINUE;
}

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
  if (const char* quiet = std::getenv("NULL_MILTER_QUIET"); quiet && *quiet == '1') {
    description.xxfi_negotiate = quiet_negotiate;
  }
  if (smfi_setconn(argv[1]) != MI_SUCCESS || smfi_register(description) != MI_SUCCESS ||
      smfi_opensocket(true) != MI_SUCCESS) {
    std::fprintf(stderr, "null_milter: cannot listen on %s\n", argv[1]);
    return 1;
  }
  return smfi_main() == MI_SUCCESS ? 0 : 1;
}
