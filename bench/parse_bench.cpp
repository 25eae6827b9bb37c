// parse_bench: the log parser alone, no database. Reads FILE like `smtpscope
// ingest` does (LogReader) and parses every line (syslog prefix and Postfix
// message); with --events also builds the Event of each recognised line.
// Prints lines/s. Usage: parse_bench FILE [--events]
#include <chrono>
#include <cstdio>

#include "config.h"
#include "log_event.h"
#include "log_reader.h"
#include "postfix_message.h"
#include "syslog_line.h"

using namespace smtpscope::ingest;

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const bool build_events = argc > 2 && std::string_view(argv[2]) == "--events";
  auto reader = LogReader::open(argv[1], smtpscope::default_config().ingest.max_line_bytes);
  if (!reader) return 1;
  YearTracker years(1'795'608'000'000'000);
  const auto started = std::chrono::steady_clock::now();
  std::string_view line;
  std::int64_t end = 0;
  unsigned long lines = 0, records = 0, events_bytes = 0;
  for (;;) {
    auto got = reader.value()->next(line, end);
    if (!got || got.value() == LogReader::Next::none) break;
    if (got.value() == LogReader::Next::too_long) continue;
    ++lines;
    auto syslog = parse_syslog_line(line, years);
    if (!syslog) continue;
    auto parsed = parse_postfix_message(syslog->daemon, syslog->message);
    if (parsed.kind != MessageKind::record) continue;
    ++records;
    if (build_events) events_bytes += to_event(*syslog, parsed.record, 1024).argument.size();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("lines=%lu records=%lu seconds=%.3f lines_per_second=%.0f (%lu)\n", lines, records,
              seconds, static_cast<double>(lines) / seconds, events_bytes % 10);
  return 0;
}
