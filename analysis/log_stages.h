// A session's stages and transactions rebuilt from Postfix's log alone, for
// sessions no milter or policy server saw. The log gives what happened but
// not always in which order: the disconnect counters (ehlo=2 starttls=1
// mail=1 rcpt=0/1 data=0/1 rset=1 quit=1) say how many of each command were
// tried and how many succeeded; reject lines date rejected RCPTs and name
// the sender; "QID: client=" lines date the first accepted RCPT of a
// transaction; "lost connection/timeout after X" says where it ended.
// The stages are the letters a milter would have produced (H per accepted
// HELO/EHLO, M R J D E A U), so the same patterns match either source.
// What the log cannot tell (the order of the transactions and of accepted
// against rejected RCPTs, which recipients belong to which transaction, the
// sender of a transaction no reject line names) is not guessed silently:
// `notes` says what was assumed and the unknown sender stays unknown.
// Without counters (Postfix before 3.0) each "QID: client=" line is a
// transaction (M R D E, or M R D A when cleanup refused its content), and
// `notes` says the counts come from queue ids. A queued message's sender,
// where qmgr's "QID: from=<S>" or cleanup's content reject named it, is the
// sender of the transaction it is placed in (a content-refused one in a
// transaction whose DATA failed, the others in delivered ones).
// Pure; linear in the counters and lines (counts are capped).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace smtpscope::analysis {

struct StageToken {
  char letter;
  std::int64_t time_us;
};

struct LogReject {
  std::int64_t time_us = 0;
  std::string command;              // RCPT, MAIL, DATA, END-OF-MESSAGE, CONNECT, ...
  std::string code;                 // "450", "554", "" for warn lines
  std::string action;               // reject, warn, milter-reject, ...
  std::optional<std::string> from;  // the sender, as logged ("" = null sender)
  std::string to;                   // the recipient of a RCPT reject, as logged
};

// What the log says about one session.
struct LogView {
  std::map<std::string, std::string> counters;  // the disconnect line
  std::vector<LogReject> rejects;
  std::vector<std::int64_t> queued_us;  // each "QID: client=" line
  // Per queued_us entry (missing entries: unknown, not refused): its
  // sender ("" = the null sender), and whether cleanup refused its content.
  std::vector<std::optional<std::string>> queued_from;
  std::vector<bool> queued_refused;
  std::string end_state;                // X of "lost connection/timeout after X"
  bool non_smtp = false;                // a non-SMTP command ended it
  bool disconnected = false;            // a "disconnect from" line, counters or not
  std::vector<std::string> helos;       // helo=<...> of reject lines, distinct
};

struct LogTransaction {
  std::optional<std::string> mail_from;  // unknown unless a reject line named it
  int rcpt_accepted = 0;
  int rcpt_rejected = 0;
  bool reached_data = false;  // DATA accepted (354)
  bool delivered = false;
  bool temp_rejected = false;  // a 4xx reject in it
};

struct LogStages {
  std::vector<StageToken> tokens;  // after C, before the end letter
  std::vector<LogTransaction> transactions;
  std::vector<std::string> notes;  // what the log could not tell
};

// "2" from "2", 1 from "1/2" (succeeded/attempted), nullopt for absent.
std::optional<int> succeeded(const std::map<std::string, std::string>& counters,
                             const std::string& name);
std::optional<int> attempted(const std::map<std::string, std::string>& counters,
                             const std::string& name);

// Tokens without a date of their own get the time of the one before (a
// MAIL its first RCPT's), so a pause shows before the next stage the log
// dates; `close_us` bounds them.
LogStages log_stages(const LogView& log, std::int64_t connect_us, std::int64_t close_us);

}  // namespace smtpscope::analysis
