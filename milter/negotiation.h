// What smtpscope-milter asks of the MTA in option negotiation: only the
// stages it records, recipients Postfix rejected (SMFIP_RCPT_REJ), no
// replies for headers and body, and no message modifications. Envelope
// stages keep their (immediate) replies so that Postfix delivers each event
// when it happens (see negotiation.cpp). Pure function of offer and config.
#pragma once

#include "config.h"

namespace smtpscope::milter {

struct Negotiated {
  unsigned long actions = 0;  // SMFIF_* we may use: none
  unsigned long steps = 0;    // SMFIP_* we request
};

Negotiated negotiate(unsigned long offered_actions, unsigned long offered_steps,
                     const Config::Milter& config);

}  // namespace smtpscope::milter
