// Joins what cleanup and qmgr log about a message to the smtpd session that
// received it, by queue id: smtpd's "QID: client=..." (a queued event)
// names the session by its stream and client endpoints. cleanup's content
// reject becomes an event of that session (it takes over the stream and
// client; cleanup rejects before smtpd answers the message, so the session
// is still open). qmgr's "from=<S>, size=N" is added to the queued event
// itself (from, size) while that event waits in the ingester's batch:
// qmgr often logs after smtpd's disconnect, when an event of its own would
// open a session of its own. Once the batch is committed, a later qmgr line
// is not joined (rare: the batch is 20,000 lines; more often in follow mode,
// which commits whenever the log pauses). Keyed by syslog host and queue
// id; bounded (the oldest forgotten first). Not thread-safe; one per Ingester.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "event.h"
#include "postfix_message.h"

namespace smtpscope::ingest {

class QueueJoin {
 public:
  static constexpr std::size_t max_remembered = 10000;

  // `queued` (a queued event with a queue_id, of `host`) is pending[index].
  void remember(std::string_view host, const Event& queued, std::size_t index);
  // Makes `event` (cleanup's, about queue_id) one of the session's; false
  // when no smtpd session of that queue id is known.
  bool join(std::string_view host, std::string_view queue_id, Event& event);
  // Adds qmgr's from and size (its record: stage mail, queue_id, from,
  // size) to its queued event in `pending`; false when that event is not
  // pending (or its sender was added already: qmgr logs it at each retry).
  bool add_sender(std::string_view host, const LogRecord& qmgr, std::vector<Event>& pending,
                  std::size_t max_value_bytes);
  // The pending events were committed (and cleared).
  void committed() { ++generation_; }

 private:
  struct Session {
    std::string stream, client_name, client_addr;
    std::optional<std::string> client_port;
    std::size_t index;
    std::uint64_t generation;
  };
  static std::string key(std::string_view host, std::string_view queue_id);
  std::unordered_map<std::string, Session> sessions_;
  std::deque<std::string> order_;  // keys, oldest first (some already erased)
  std::uint64_t generation_ = 0;
};

}  // namespace smtpscope::ingest
