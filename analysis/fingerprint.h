// A client fingerprint from a session's stable behaviour: greeting verb,
// HELO class, the ESMTP keywords it uses on MAIL/RCPT, TLS, AUTH, the habit
// of resetting after an accepted RCPT, and the kept X-Mailer/User-Agent
// header. Shown as readable features and a short id (a hash of them).
// Traits that vary with circumstance (QUIT or drop, RSET between cached
// messages, NOOP) stay in SessionFacts: in the hash they made one MTA look
// like several. Pure functions.
#pragma once

#include <string>
#include <vector>

#include "session_facts.h"
#include "session_reader.h"

namespace smtpscope::analysis {

struct Fingerprint {
  std::vector<std::pair<std::string, std::string>> features;  // name, value; fixed order
  std::string id;                                             // 8 hex digits
  std::string readable() const;                               // "greeting=EHLO helo=fqdn ..."
};

Fingerprint fingerprint_of(const SessionRecord& session, const SessionFacts& facts);

}  // namespace smtpscope::analysis
