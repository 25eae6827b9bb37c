#include "log_event.h"

#include <string>

#include "text_escape.h"

namespace smtpscope::ingest {

Event to_event(const SyslogLine& line, const LogRecord& record, std::size_t max_value_bytes) {
  auto bound = [max_value_bytes](std::string_view text) {
    return std::string(bounded(text, max_value_bytes));
  };
  Event event;
  event.source = Source::log;
  event.stage = record.stage;
  event.time_us = line.time_us;
  event.stream = "log:" + bound(line.host) + ":" + std::to_string(line.pid);
  event.argument = bound(record.argument);
  event.attributes.reserve(record.field_count + 6);
  event.add("client_name", bound(record.client.name));
  event.add("client_addr", bound(record.client.addr));
  if (record.client.port) event.add("client_port", std::to_string(*record.client.port));
  event.add("program", bound(line.program));
  event.add("pid", std::to_string(line.pid));
  event.add("host", bound(line.host));
  // The line happened somewhere in [time, time + 1 s): readers order it by
  // the end of that second and show its time as approximate.
  if (line.whole_seconds) event.add("clock", "second");
  for (std::size_t i = 0; i < record.field_count; ++i) {
    event.add(bound(record.fields[i].name), bound(record.fields[i].value));
  }
  return event;
}

}  // namespace smtpscope::ingest
