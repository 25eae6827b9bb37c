// Turns Events into rows: opens a session on connect, a transaction on MAIL,
// updates them as stages arrive and inserts one events row per Event. Runs
// inside the caller's SQL transaction; the caller commits or rolls back and,
// on rollback, restores the in-memory stream map with restore().
// Owned and used by the Store's writer thread only (not thread-safe).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "event.h"
#include "result.h"
#include "sqlite.h"

namespace smtpscope {

class EventWriter {
 public:
  // What the writer knows about an open stream (one sensor connection).
  struct StreamState {
    std::int64_t session_id = 0;
    std::int64_t transaction_id = 0;  // latest transaction row, 0 before the first
    std::uint32_t transaction_seq = 0;
    bool transaction_open = false;
  };
  using StreamMap = std::unordered_map<std::string, StreamState>;

  static Result<std::unique_ptr<EventWriter>> create(sqlite::Database& db);
  ~EventWriter();

  Status apply(const Event& event);

  StreamMap checkpoint() const { return streams_; }
  void restore(StreamMap saved) { streams_ = std::move(saved); }
  std::size_t open_streams() const { return streams_.size(); }

 private:
  struct Statements;
  EventWriter(sqlite::Database& db, std::unique_ptr<Statements> statements);

  Result<StreamState*> stream_for(const Event& event);
  Status open_session(const Event& event, bool partial);
  Status update_session_and_transaction(const Event& event, StreamState& stream);
  Status begin_transaction(const Event& event, StreamState& stream);
  Status end_transaction(const Event& event, StreamState& stream, bool delivered);
  Status insert_event(const Event& event, const StreamState& stream, std::int64_t transaction_id);

  sqlite::Database& db_;
  std::unique_ptr<Statements> statements_;
  StreamMap streams_;
};

}  // namespace smtpscope
