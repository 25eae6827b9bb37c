#include "negotiation.h"

#include <libmilter/mfapi.h>

namespace smtpscope::milter {

// Why envelope stages keep their replies: Postfix writes a milter event that
// takes no reply into its stream buffer and flushes the buffer only when it
// next waits for a reply, or at QUIT. With SMFIP_NR_CONN/HELO/MAIL/RCPT/DATA
// a whole session therefore reaches the milter in one burst at its end and
// every stage time is lost (measured with a raw-socket milter against Postfix
// 3.7.11; see docs/milter.md). Answering CONTINUE at once costs one local
// round trip per stage and keeps the times real. Headers and body are sent by
// cleanup after the message is queued and flushed at end of message, so they
// go without replies.
Negotiated negotiate(unsigned long /*offered_actions*/, unsigned long offered_steps,
                     const Config::Milter& config) {
  unsigned long wanted = SMFIP_RCPT_REJ | SMFIP_NOEOH | SMFIP_NR_HDR | SMFIP_NR_BODY;
  if (config.headers.empty() || config.max_headers == 0) wanted |= SMFIP_NOHDRS;
  if (!config.record_body_size) wanted |= SMFIP_NOBODY;
  return Negotiated{0, wanted & offered_steps};
}

}  // namespace smtpscope::milter
