// One recorded session reduced to what patterns test: a stage string in
// the order things happened, e.g. "C H M R +3s A M R D E Q", built from the
// milter's events (the policy server's where the milter saw nothing), ended
// by what the log says about the end (with the policy server's, a RCPT
// the log shows rejected is J, and its transactions are counted from
// those stages and its MAIL senders), with gaps of 2 s or more written as
// "+Ns"; the log's counters (rset, noop, quit ...); and flags such as "the
// same envelope was retried after an abort". Where sensors disagree or one
// is missing, `notes` says so instead of guessing. Pure functions, each
// linear in the session's events and transactions and without recursion, so
// a session of any length (a cached connection with thousands of messages)
// is analysed in bounded stack.
//
// Letters: C connect, H HELO/EHLO, M MAIL, R RCPT accepted, J RCPT rejected,
// D DATA, E end of message (queued), A transaction aborted, U unknown
// command, then the end: Q QUIT, L connection lost (or dropped without
// QUIT), T timeout, K too many errors, Z closed (no log to say how).
// A session only the log saw gets the same letters, rebuilt from the
// disconnect counters and reject lines (log_stages.h), its transactions
// counted from them; what the log cannot tell stays unknown (an optional
// without a value) and `notes` says so. The log's other facts: failed SASL
// AUTH lines (auth_failures; a session without a disconnect line gets
// auth=0/N in log_counters from them, so AUTH guessing is named where the
// log has no counters, and counters_derived says so), failed TLS
// handshakes, cleanup's content rejects (counted, and the sender they
// name), qmgr's sender of a queued message (the transaction's sender), and
// smtpd's PTR check (the quirks ptr-mismatch and unresolved-name).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "helo_quirks.h"
#include "log_stages.h"
#include "session_reader.h"

namespace smtpscope::analysis {

struct SessionFacts {
  std::string stages;
  std::vector<std::string> helos;
  std::vector<HeloQuirk> quirks;
  std::map<std::string, std::string> log_counters;  // from the log's disconnect line
  bool counters_derived = false;  // no disconnect counters: log_counters counted from other lines
  bool have_log = false;
  std::optional<int> rset;  // RSET commands, when the log says
  std::optional<int> noop;
  std::string end;          // quit, lost, timeout, error-limit, closed
  std::string lost_after;   // the log's STATE for lost/timeout
  bool helo_refused = false;  // the log counted a HELO/EHLO Postfix refused, none accepted
  bool pipelining = false;    // improper command pipelining logged
  bool pregreet = false;      // talked before the greeting (postscreen PREGREET, or after CONNECT)
  bool non_smtp = false;
  std::vector<std::string> screen_verdicts;
  int transactions = 0;
  int delivered = 0;
  int aborted = 0;
  int temp_rejects = 0;  // 4xx replies in reject lines
  int perm_rejects = 0;  // 5xx
  int auth_failures = 0;    // "SASL METHOD authentication failed" lines
  int content_rejects = 0;  // cleanup's (or a milter's) reject of a message's content
  bool tls_failed = false;  // a TLS handshake that did not complete
  std::string tls_failure;  // the first one's reason, as logged
  // Unknown (no value) when the senders are not all known, as from the log.
  std::optional<bool> null_sender;            // a transaction with MAIL FROM:<>
  std::optional<bool> retried_same_envelope;  // aborted after an accepted RCPT, same sender again
  std::vector<std::string> senders;           // known senders, without <>, in order
  double max_gap_s = 0;
  std::vector<std::string> notes;
};

SessionFacts facts_of(const SessionRecord& session);

// How many of the log's RSETs the milter saw as aborts inside a transaction
// (each abort a MAIL follows; a last abort before QUIT when the log counted
// more RSETs than that). The rest came outside a transaction.
int rsets_inside_transactions(const std::string& stages, int log_rsets, bool quit);

}  // namespace smtpscope::analysis
