// Turns milter callbacks into Events and submits them. Knows the milter
// protocol's stage order and Postfix's macros, nothing about libmilter's
// API, so every callback can be exercised in unit tests. Bounds every client
// string (config milter.max_value_bytes), recipients and headers.
// Thread-safe: shared state is the const config, the clock and the sink.
// With export_metrics() (called before the first callback) it counts every
// callback by stage and the SMTP sessions open: relaxed atomic adds, no lock.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "clock.h"
#include "config.h"
#include "connection_context.h"
#include "event_sink.h"
#include "macro_source.h"
#include "metrics_registry.h"

namespace smtpscope::milter {

// The peer address as libmilter gave it to xxfi_connect.
struct PeerAddress {
  std::string address;  // textual IP, empty when not an IP socket
  std::optional<std::uint16_t> port;
};

class Recorder {
 public:
  Recorder(std::shared_ptr<const Config> config, const Clock& clock, EventSink& sink);

  std::unique_ptr<ConnectionContext> new_connection(unsigned long no_reply_steps);

  void connect(ConnectionContext& c, std::string_view hostname, const PeerAddress& peer,
               const MacroSource& macros);
  void helo(ConnectionContext& c, std::string_view name, const MacroSource& macros);
  void mail(ConnectionContext& c, const std::vector<std::string_view>& args,
            const MacroSource& macros);
  void rcpt(ConnectionContext& c, const std::vector<std::string_view>& args,
            const MacroSource& macros);
  void data(ConnectionContext& c, const MacroSource& macros);
  void header(ConnectionContext& c, std::string_view name, std::string_view value);
  void body(ConnectionContext& c, std::size_t bytes);
  void end_of_message(ConnectionContext& c, const MacroSource& macros);
  void abort(ConnectionContext& c);
  void unknown(ConnectionContext& c, std::string_view command);
  void close(ConnectionContext& c);

  // Registers smtpscope_milter_callbacks_total{stage} and
  // smtpscope_sessions_open{source="milter"}. Not thread-safe: call once,
  // before the MTA's first connection.
  void export_metrics(MetricsRegistry& registry);

  const Config& config() const { return *config_; }
  std::uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  Event make_event(const ConnectionContext& c, Stage stage, std::string_view argument) const;
  void add_macros(const ConnectionContext& c, Event& event, Stage stage,
                  const MacroSource& macros) const;
  std::string bound(const ConnectionContext& c, std::string_view raw) const;
  void submit(Event event);
  enum class Callback { connect, helo, mail, rcpt, data, header, body, eom, abort, unknown, close };
  void count(Callback callback) {
    if (auto* counter = callbacks_[static_cast<std::size_t>(callback)]) counter->inc();
  }

  std::shared_ptr<const Config> config_;
  const Clock& clock_;
  EventSink& sink_;
  std::atomic<std::uint64_t> next_stream_{1};
  std::atomic<std::uint64_t> dropped_{0};
  std::array<Counter*, 11> callbacks_{};  // by Callback; null without metrics
  Gauge* sessions_open_ = nullptr;
};

}  // namespace smtpscope::milter
