// A client fingerprint from a session's stable behaviour, known before DATA:
// greeting verb, HELO class, the ESMTP keywords it uses on MAIL/RCPT
// (compared without case) and the case it writes them in, TLS, AUTH, the
// habit of resetting after an accepted RCPT, DATA or BDAT, QUIT or drop.
// Each feature comes from whichever sensor knows it (the policy server's
// protocol_name or the log's ehlo= counter, the milter's TLS macros or the
// log's starttls=), so a log-only session gets the same features where the
// log carries them: the log's command-count signature. Shown as readable
// features and a short id (a hash of them).
// What is known only once the client reaches DATA (DATA or BDAT, the kept
// X-Mailer/User-Agent header) or at the end (QUIT or drop) is shown apart
// and not hashed: a program whose transactions were rejected before DATA,
// or whose connection once broke, keeps its id. Traits that vary with
// circumstance (RSET between cached messages, NOOP, message and recipient
// counts) stay in SessionFacts: in the hash they made one MTA look like
// several. Pure.
#pragma once

#include <string>
#include <vector>

#include "session_facts.h"
#include "session_reader.h"

namespace smtpscope::analysis {

struct Fingerprint {
  std::vector<std::pair<std::string, std::string>> features;  // name, value; fixed order
  std::vector<std::pair<std::string, std::string>> later;     // body, end, mailer; not in the id
  std::string id;                                             // 8 hex digits, of `features`
  std::string readable() const;  // "greeting=EHLO helo=fqdn ... | body=DATA end=quit mailer=..."
};

Fingerprint fingerprint_of(const SessionRecord& session, const SessionFacts& facts);

}  // namespace smtpscope::analysis
