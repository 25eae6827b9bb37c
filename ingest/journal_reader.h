// Reads Postfix's entries from the systemd journal through libsystemd's
// sd-journal API (never by parsing journalctl's text): the local system's
// journal, or journal files (one file, or a directory of them: exported,
// archived, or written by systemd-journal-remote). An entry is Postfix's
// when its SYSLOG_IDENTIFIER is "<syslog_name>/<daemon>" with a syslog_name
// starting with "postfix" (postfix, postfix-in, postfix-out) or a Postfix
// daemon as its last component (any syslog_name), or, with a unit given,
// when it comes from that unit. Each entry carries its time in
// microseconds and its host (_HOSTNAME). Positions are journal cursors:
// seek_after() resumes after the last entry an earlier run committed.
// Views in JournalEntry stay valid until the next call to next(). Not
// thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "result.h"

struct sd_journal;

namespace smtpscope::ingest {

struct JournalSelection {
  std::string path;  // a journal file or a directory of them; empty: the local journal
  std::string unit;  // only this systemd unit's entries (e.g. postfix@-.service)
};

struct JournalEntry {
  std::int64_t time_us = 0;  // __REALTIME_TIMESTAMP, UTC
  std::string_view identifier;  // SYSLOG_IDENTIFIER: "postfix/smtpd", "postfix-in/smtpd"
  std::string_view host;        // _HOSTNAME
  std::string_view machine_id;  // _MACHINE_ID
  std::int64_t pid = 0;         // SYSLOG_PID, else _PID
  std::string_view message;     // MESSAGE
};

// Whether SYSLOG_IDENTIFIER names a Postfix program.
bool postfix_identifier(std::string_view identifier);

class JournalReader {
 public:
  static Result<std::unique_ptr<JournalReader>> open(const JournalSelection& selection,
                                                     std::size_t max_message_bytes);
  ~JournalReader();
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;

  // Positions the reader after the entry of `cursor`; false when the
  // journal no longer holds it (rotated away): then after its time.
  Result<bool> seek_after(const std::string& cursor);

  enum class Next { entry, none };
  // The next Postfix entry; none when there is none for now.
  Result<Next> next(JournalEntry& entry);
  // The cursor of the entry next() returned last.
  Result<std::string> cursor() const;
  // Waits up to `timeout` for the journal to change (follow mode).
  Status wait(std::chrono::milliseconds timeout);

 private:
  explicit JournalReader(sd_journal* journal) : journal_(journal) {}
  Status read_fields();

  sd_journal* journal_;
  bool polling_ = false;  // no change notification (files opened by name)
  std::string identifier_, host_, machine_id_, syslog_pid_, pid_, message_;
};

}  // namespace smtpscope::ingest
