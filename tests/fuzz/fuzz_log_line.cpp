// Fuzzes the log path one line at a time, as `smtpscope ingest` reads it:
// the syslog envelope, the Postfix smtpd/postscreen message, the event made
// of it, and the smtp client (outbound) message. Invariant: what is stored
// is bounded by max_value_bytes.
#include "fuzz_input.h"
#include "log_event.h"
#include "postfix_message.h"
#include "smtp_client_message.h"
#include "syslog_line.h"

using namespace smtpscope;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::size_t max_value_bytes = 256;
  const std::string_view line = fuzz::as_text(data, size);
  ingest::YearTracker years(1'780'000'000'000'000);  // 2026
  const auto syslog = ingest::parse_syslog_line(line, years);
  if (!syslog) return 0;
  const ingest::ParsedMessage parsed = ingest::parse_postfix_message(syslog->daemon, syslog->message);
  if (parsed.kind == ingest::MessageKind::record) {
    const Event event = ingest::to_event(*syslog, parsed.record, max_value_bytes);
    fuzz::require(event.argument.size() <= max_value_bytes, "argument bounded");
    for (const auto& attribute : event.attributes) {
      fuzz::require(attribute.value.size() <= max_value_bytes, "attribute bounded");
    }
  }
  (void)ingest::parse_smtp_client_message(syslog->message);
  return 0;
}
