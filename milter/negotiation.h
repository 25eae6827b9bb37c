// What smtpscope-milter asks of the MTA in option negotiation: only the
// stages it records, no replies wherever the MTA allows it (so Postfix never
// waits for us), recipients Postfix rejected (SMFIP_RCPT_REJ), and no message
// modifications. Pure function of the offer and the configuration.
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
