#include "negotiation.h"

#include <libmilter/mfapi.h>

namespace smtpscope::milter {

Negotiated negotiate(unsigned long /*offered_actions*/, unsigned long offered_steps,
                     const Config::Milter& config) {
  unsigned long wanted = SMFIP_RCPT_REJ | SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL |
                         SMFIP_NR_RCPT | SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH |
                         SMFIP_NR_BODY | SMFIP_NR_HDR | SMFIP_NOEOH;
  if (config.headers.empty() || config.max_headers == 0) wanted |= SMFIP_NOHDRS;
  if (!config.record_message_size) wanted |= SMFIP_NOBODY;
  return Negotiated{0, wanted & offered_steps};
}

}  // namespace smtpscope::milter
