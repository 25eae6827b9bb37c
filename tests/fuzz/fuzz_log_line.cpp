// Fuzzes the log path as `smtpscope ingest` reads it. The input, as one
// line: the syslog envelope (BSD stamps with the year from a file's mtime
// and from --year, RFC 3339 stamps of any year), the Postfix smtpd/postscreen
// message (reject details, NAME[ADDR] clients), the event made of it, and
// the smtp client (outbound) message. The input, as a file: the line reader
// with a small line bound (plain or gzip, when the input has a newline or
// is gzip). Invariants: what is stored is
// bounded by max_value_bytes; every parsed view (client, argument, fields
// such as helo/from/to) lies inside the line, an address inside its
// brackets; the reader hands out no line over its bound and no newline,
// accounts for every byte of a plain file, and never goes backwards.
#include <sys/mman.h>
#include <unistd.h>

#include <string>

#include "fuzz_input.h"
#include "log_event.h"
#include "log_reader.h"
#include "postfix_message.h"
#include "smtp_client_message.h"
#include "syslog_line.h"

using namespace smtpscope;

namespace {

constexpr std::size_t max_value_bytes = 256;
constexpr std::size_t max_line_bytes = 64;

bool inside(std::string_view part, std::string_view whole) {
  if (part.empty()) return true;
  return part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size();
}

void check_record(const ingest::LogRecord& record, std::string_view line) {
  fuzz::require(inside(record.argument, line), "argument inside the line");
  fuzz::require(inside(record.client.name, line) && inside(record.client.addr, line),
                "client inside the line");
  if (!record.client.addr.empty()) {
    const char* addr = record.client.addr.data();
    fuzz::require(addr[-1] == '[' && addr[record.client.addr.size()] == ']',
                  "address inside its brackets");
    fuzz::require(record.client.addr.find_first_of("[]") == std::string_view::npos,
                  "no bracket in an address");
  }
  for (std::size_t i = 0; i < record.field_count; ++i) {
    const ingest::Field& field = record.fields[i];
    if (field.name == "from" || field.name == "to" || field.name == "proto" ||
        field.name == "helo") {
      fuzz::require(inside(field.value, line), "reject detail inside the line");
      fuzz::require(field.value.data() > record.argument.data(), "reject detail after the reply");
    }
  }
}

void parse_as_line(std::string_view line, ingest::YearTracker& years) {
  const auto syslog = ingest::parse_syslog_line(line, years);
  if (!syslog) return;
  (void)ingest::plausible_time(syslog->time_us, 1'780'000'000'000'000);
  const ingest::ParsedMessage parsed =
      ingest::parse_postfix_message(syslog->daemon, syslog->message);
  if (parsed.kind == ingest::MessageKind::record) {
    check_record(parsed.record, line);
    const Event event = ingest::to_event(*syslog, parsed.record, max_value_bytes);
    fuzz::require(event.argument.size() <= max_value_bytes, "argument bounded");
    for (const auto& attribute : event.attributes) {
      fuzz::require(attribute.value.size() <= max_value_bytes, "attribute bounded");
    }
  }
  (void)ingest::parse_smtp_client_message(syslog->message);
}

void read_as_file(std::string_view data) {
  const int fd = ::memfd_create("fuzz_log_line", MFD_CLOEXEC);
  if (fd < 0) return;
  if (::write(fd, data.data(), data.size()) != static_cast<ssize_t>(data.size())) {
    ::close(fd);
    return;
  }
  auto reader = ingest::LogReader::open("/proc/self/fd/" + std::to_string(fd), max_line_bytes);
  ::close(fd);
  if (!reader) return;
  ingest::LogReader& r = *reader.value();
  if (!r.first_line()) return;
  std::string_view line;
  std::int64_t end = 0;
  std::int64_t previous = 0;
  for (;;) {
    auto got = r.next(line, end);
    if (!got || got.value() == ingest::LogReader::Next::none) break;
    fuzz::require(end > previous, "the reader moves forward");
    previous = end;
    if (got.value() == ingest::LogReader::Next::line) {
      fuzz::require(line.size() <= max_line_bytes, "a line within the bound");
      fuzz::require(line.find('\n') == std::string_view::npos, "no newline inside a line");
    }
  }
  std::int64_t rest_end = r.offset();
  std::string_view rest;
  if (r.finish(rest, rest_end)) {
    fuzz::require(rest.size() <= max_line_bytes, "a held-back rest within the bound");
  }
  if (!r.compressed()) {
    fuzz::require(rest_end == static_cast<std::int64_t>(data.size()), "every byte accounted for");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line = fuzz::as_text(data, size);
  ingest::YearTracker from_mtime(1'780'000'000'000'000);  // 2026
  parse_as_line(line, from_mtime);
  ingest::YearTracker given = ingest::YearTracker::starting_in(9999);  // --year's upper end
  parse_as_line(line, given);
  // The file pass costs a reader and a file per input: only for inputs that
  // are several lines, or gzip.
  if (line.find('\n') != std::string_view::npos || line.starts_with("\x1f\x8b")) {
    read_as_file(line);
  }
  return 0;
}
