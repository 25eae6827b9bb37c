#include "journal_reader.h"

#include <systemd/sd-journal.h>
#include <sys/stat.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <thread>

namespace smtpscope::ingest {
namespace {

// Postfix's daemons and commands, as the last component of its syslog
// identifiers ("postfix/smtpd", "mx-out/smtp").
constexpr std::array<std::string_view, 38> postfix_programs = {
    "anvil",    "bounce",   "cleanup",  "discard",     "dnsblog",    "error",     "flush",
    "lmtp",     "local",    "master",   "oqmgr",       "pickup",     "pipe",      "postdrop",
    "postfix",  "postfix-script", "postlogd", "postmap", "postqueue", "postscreen", "postsuper",
    "proxymap", "qmgr",     "qmqpd",    "scache",      "sendmail",   "showq",     "smtp",
    "smtpd",    "spawn",    "tlsmgr",   "tlsproxy",    "trivial-rewrite", "verify", "virtual",
    "postconf", "postkick", "postlog"};

std::string errno_text(int negative_errno) { return std::strerror(-negative_errno); }

}  // namespace

bool postfix_identifier(std::string_view identifier) {
  const std::size_t slash = identifier.find('/');
  if (slash == std::string_view::npos || slash == 0) return false;
  if (identifier.starts_with("postfix")) return true;
  const std::string_view program = identifier.substr(identifier.rfind('/') + 1);
  for (std::string_view known : postfix_programs) {
    if (program == known) return true;
  }
  return false;
}

Result<std::unique_ptr<JournalReader>> JournalReader::open(const JournalSelection& selection,
                                                           std::size_t max_message_bytes) {
  sd_journal* journal = nullptr;
  int r = 0;
  const std::string where = selection.path.empty() ? "the system journal" : selection.path;
  if (selection.path.empty()) {
    r = sd_journal_open(&journal, SD_JOURNAL_LOCAL_ONLY);
  } else {
    struct stat info{};
    if (::stat(selection.path.c_str(), &info) != 0) {
      return Status::error(selection.path + ": " + std::strerror(errno));
    }
    if (S_ISDIR(info.st_mode)) {
      r = sd_journal_open_directory(&journal, selection.path.c_str(), 0);
    } else {
      const char* files[] = {selection.path.c_str(), nullptr};
      r = sd_journal_open_files(&journal, files, 0);
    }
  }
  if (r < 0) return Status::error("open " + where + ": " + errno_text(r));
  auto reader = std::unique_ptr<JournalReader>(new JournalReader(journal));
  // A longer MESSAGE is cut here, as a log line is bounded by max_line_bytes.
  (void)sd_journal_set_data_threshold(journal, max_message_bytes + 64);
  if (!selection.unit.empty()) {
    const std::string match = "_SYSTEMD_UNIT=" + selection.unit;
    r = sd_journal_add_match(journal, match.data(), match.size());
    if (r < 0) return Status::error("select unit " + selection.unit + ": " + errno_text(r));
  }
  r = sd_journal_seek_head(journal);
  if (r < 0) return Status::error("read " + where + ": " + errno_text(r));
  return reader;
}

JournalReader::~JournalReader() { sd_journal_close(journal_); }

Result<bool> JournalReader::seek_after(const std::string& cursor) {
  int r = sd_journal_seek_cursor(journal_, cursor.c_str());
  if (r < 0) return Status::error("seek to the saved journal cursor: " + errno_text(r));
  r = sd_journal_next(journal_);
  if (r < 0) return Status::error("read the journal: " + errno_text(r));
  if (r > 0 && sd_journal_test_cursor(journal_, cursor.c_str()) > 0) return true;
  // Not there (rotated away): on after its time, the cursor's "t=" field.
  std::uint64_t after_us = 0;
  if (const std::size_t t = cursor.find(";t="); t != std::string::npos) {
    const char* from = cursor.data() + t + 3;
    (void)std::from_chars(from, cursor.data() + cursor.size(), after_us, 16);
  }
  r = after_us > 0 ? sd_journal_seek_realtime_usec(journal_, after_us + 1)
                   : sd_journal_seek_head(journal_);
  if (r < 0) return Status::error("read the journal: " + errno_text(r));
  return false;
}

// The fields an entry is read for, each into its string.
Status JournalReader::read_fields() {
  for (std::string* out : {&identifier_, &host_, &machine_id_, &syslog_pid_, &pid_, &message_}) {
    out->clear();
  }
  constexpr std::pair<std::string_view, std::string JournalReader::*> wanted[] = {
      {"SYSLOG_IDENTIFIER=", &JournalReader::identifier_}, {"MESSAGE=", &JournalReader::message_},
      {"_HOSTNAME=", &JournalReader::host_},       {"_MACHINE_ID=", &JournalReader::machine_id_},
      {"SYSLOG_PID=", &JournalReader::syslog_pid_}, {"_PID=", &JournalReader::pid_}};
  const void* data = nullptr;
  std::size_t size = 0;
  // One pass over the entry's fields rather than a lookup per field.
  SD_JOURNAL_FOREACH_DATA(journal_, data, size) {
    const std::string_view item(static_cast<const char*>(data), size);
    for (const auto& [prefix, member] : wanted) {
      if (item.starts_with(prefix)) {
        (this->*member).assign(item.substr(prefix.size()));
        break;
      }
    }
  }
  return Status::ok();
}

Result<JournalReader::Next> JournalReader::next(JournalEntry& entry) {
  for (;;) {
    const int r = sd_journal_next(journal_);
    if (r < 0) return Status::error("read the journal: " + errno_text(r));
    if (r == 0) return Next::none;
    if (Status read = read_fields(); !read) return read;
    if (!postfix_identifier(identifier_)) continue;
    std::uint64_t realtime = 0;
    if (const int t = sd_journal_get_realtime_usec(journal_, &realtime); t < 0) {
      return Status::error("read an entry's time: " + errno_text(t));
    }
    const std::string& pid = syslog_pid_.empty() ? pid_ : syslog_pid_;
    entry.time_us = static_cast<std::int64_t>(realtime);
    entry.identifier = identifier_;
    entry.host = host_;
    entry.machine_id = machine_id_;
    entry.message = message_;
    entry.pid = 0;
    (void)std::from_chars(pid.data(), pid.data() + pid.size(), entry.pid);
    return Next::entry;
  }
}

Result<std::string> JournalReader::cursor() const {
  char* text = nullptr;
  const int r = sd_journal_get_cursor(journal_, &text);
  if (r < 0) return Status::error("journal cursor: " + errno_text(r));
  std::string cursor(text);
  free(text);
  return cursor;
}

Status JournalReader::wait(std::chrono::milliseconds timeout) {
  if (!polling_) {
    const int r = sd_journal_wait(journal_, static_cast<std::uint64_t>(timeout.count()) * 1000);
    if (r >= 0 || r == -EINTR) return Status::ok();
    // Journal files opened by name have no change notification: look again later.
    if (r != -EDESTADDRREQ && r != -EMEDIUMTYPE) {
      return Status::error("wait for the journal: " + errno_text(r));
    }
    polling_ = true;
  }
  std::this_thread::sleep_for(timeout);
  return Status::ok();
}

}  // namespace smtpscope::ingest
