#include "postscreen_handoff.h"

namespace smtpscope::ingest {
namespace {

std::string_view verdict_of(const LogRecord& record) {
  for (std::size_t i = 0; i < record.field_count; ++i) {
    if (record.fields[i].name == "verdict") return record.fields[i].value;
  }
  return {};
}

bool hands_over(std::string_view verdict) {
  return verdict == "PASS NEW" || verdict == "PASS OLD" || verdict == "WHITELISTED";
}

}  // namespace

void PostscreenHandoff::observe(const SyslogLine& line, LogRecord& record) {
  if (line.daemon == "postscreen") {
    if (record.stage == Stage::screen && record.client.port && hands_over(verdict_of(record))) {
      remember_pass(line, record);
    }
    return;
  }
  if (line.daemon == "smtpd") fill_smtpd(line, record);
}

void PostscreenHandoff::remember_pass(const SyslogLine& line, const LogRecord& record) {
  if (passes_.size() >= max_remembered) passes_.clear();
  passes_.emplace(std::make_pair(std::string(line.host), std::string(record.client.addr)),
                  Pass{*record.client.port, line.time_us});
}

void PostscreenHandoff::fill_smtpd(const SyslogLine& line, LogRecord& record) {
  const auto stream = std::make_pair(std::string(line.host), line.pid);
  if (record.stage == Stage::connect) {
    streams_.erase(stream);
    if (record.client.port) return;
    auto [first, last] =
        passes_.equal_range(std::make_pair(std::string(line.host), std::string(record.client.addr)));
    while (first != last) {
      const Pass pass = first->second;
      if (line.time_us - pass.time_us > window_us) {  // expired, never taken
        first = passes_.erase(first);
        continue;
      }
      // Log times of whole seconds: a pass may carry a stamp a second later.
      if (pass.time_us - line.time_us > 1'000'000) {
        ++first;
        continue;
      }
      passes_.erase(first);
      if (streams_.size() >= max_remembered) streams_.clear();
      streams_[stream] = Adopted{std::string(record.client.addr), pass.port};
      record.client.port = pass.port;
      return;
    }
    return;
  }
  const auto adopted = streams_.find(stream);
  if (adopted == streams_.end()) return;
  if (!record.client.port && record.client.addr == adopted->second.addr) {
    record.client.port = adopted->second.port;
  }
  if (record.stage == Stage::close) streams_.erase(adopted);
}

}  // namespace smtpscope::ingest
