// Turns Events into rows. Milter events own their session: a connect opens
// one (or adopts the one another sensor opened first), a MAIL opens a
// transaction, and close ends it. Policy and log events join the session of
// their client address and port, or address, smtpd pid and time when the log
// has no ports (SessionJoiner); policy events attach to the transaction
// their `instance` names. Every Event becomes one event_rows row, whose
// attributes are a patch against the attribute set of its source and stage
// (attribute_patch.h), or against the stream's last whole row in the same
// session, whichever is smaller. An event that differs from both in more
// than half its bytes is stored whole (and is the stream's next base row),
// unless what it has in common with the last such event of its kind is most
// of it: that becomes the new set (values that repeat from session to
// session).
// Runs inside the caller's SQL transaction; on rollback the caller restores
// the in-memory state with restore(). Used by the Store's writer thread only.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "attribute_patch.h"
#include "event.h"
#include "result.h"
#include "session_join.h"
#include "sqlite.h"

namespace smtpscope {

class EventWriter {
 public:
  // What the writer knows about an open milter stream (one connection).
  struct StreamState {
    std::int64_t session_id = 0;
    std::int64_t transaction_id = 0;  // latest transaction row, 0 before the first
    std::uint32_t transaction_seq = 0;
    bool transaction_open = false;
    std::shared_ptr<const AttributeBase> base;  // the stream's last whole row in this session
  };
  // The session a policy connection or an smtpd process (log) serves now.
  struct JoinedState {
    std::string client_addr;
    std::optional<std::int64_t> client_port;
    std::int64_t session_id = 0;
    std::string protocol;
    std::uint32_t transaction_seq = 0;  // the transaction last seen, and its row
    std::int64_t transaction_id = 0;
    std::shared_ptr<const AttributeBase> base;  // the stream's last whole row in this session
  };
  struct Memory {
    std::unordered_map<std::string, StreamState> milter;
    std::unordered_map<std::string, JoinedState> joined;
    // Per source and stage: the attribute set rows are patches against
    // (attribute_patch.h), and the last event that differed from it too much.
    std::array<std::shared_ptr<const AttributeBase>, 3 * stage_count> sets;
    std::array<std::shared_ptr<const std::vector<Attribute>>, 3 * stage_count> missed;
  };

  static Result<std::unique_ptr<EventWriter>> create(sqlite::Database& db);
  ~EventWriter();

  Status apply(const Event& event);

  Memory checkpoint() const { return memory_; }
  void restore(Memory saved) { memory_ = std::move(saved); }
  std::size_t open_streams() const { return memory_.milter.size(); }

 private:
  struct Statements;
  EventWriter(sqlite::Database& db, std::unique_ptr<SessionJoiner> joiner,
              std::unique_ptr<Statements> statements);

  Status apply_milter(const Event& event);
  Result<StreamState*> milter_stream(const Event& event);
  Status open_milter_session(const Event& event, bool partial);
  Status update_from_milter(const Event& event, StreamState& stream);
  Status begin_transaction(const Event& event, StreamState& stream);
  Status end_transaction(const Event& event, StreamState& stream, bool delivered);

  Status apply_joined(const Event& event);
  Result<JoinedState*> joined_session(const Event& event);
  Status record_protocol(const Event& event, JoinedState& state);
  Result<std::int64_t> policy_transaction(const Event& event, JoinedState& state);

  // How an event's attributes are stored: whole, or a patch against a set or a base row.
  struct StoredAttributes {
    std::string text;
    std::optional<std::int64_t> set_id;
    std::optional<std::int64_t> base_id;
    bool next_base = false;  // stored whole: the stream's next base row
  };
  Result<StoredAttributes> stored_attributes(const Event& event,
                                             const std::shared_ptr<const AttributeBase>& base);
  Status insert_event(const Event& event, std::int64_t session_id, std::int64_t transaction_id,
                      std::shared_ptr<const AttributeBase>& base);
  Status new_attribute_set(std::vector<Attribute> attributes,
                           std::shared_ptr<const AttributeBase>& set);

  sqlite::Database& db_;
  std::unique_ptr<SessionJoiner> joiner_;
  std::unique_ptr<Statements> statements_;
  Memory memory_;
};

// Endpoints named by an event's attributes (milter or policy names).
Endpoints endpoints_of(const Event& event);

}  // namespace smtpscope
