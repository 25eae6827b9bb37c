#include "event_writer.h"

#include <fmt/format.h>


#include "event_writer_internal.h"
#include "json_text.h"

namespace smtpscope {
namespace {

std::optional<std::string_view> first_of(const Event& event, const char* a, const char* b) {
  auto value = event.attribute(a);
  return value ? value : event.attribute(b);
}

}  // namespace

Endpoints endpoints_of(const Event& event) {
  Endpoints e;
  e.client_addr = std::string(first_of(event, "client_addr", "client_address").value_or(""));
  e.client_port = to_number(event.attribute("client_port"));
  e.client_name = to_text(event.attribute("client_name"));
  e.client_ptr = to_text(first_of(event, "client_ptr", "reverse_client_name"));
  e.server_addr = to_text(first_of(event, "server_addr", "server_address"));
  e.server_port = to_number(event.attribute("server_port"));
  return e;
}


Result<std::unique_ptr<EventWriter>> EventWriter::create(sqlite::Database& db) {
  auto joiner = SessionJoiner::create(db);
  if (!joiner) return joiner.status();
  auto prepared = db.prepare_all({
      "INSERT INTO sessions (stream, client_addr, client_port, client_name, client_ptr,"
      " server_addr, server_port, connect_us, partial, sources)"
      " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,'milter')",
      "UPDATE sessions SET helo = ?2, helo_count = helo_count + 1 WHERE id = ?1",
      "UPDATE transactions SET rcpt_accepted = rcpt_accepted + ?2,"
      " rcpt_rejected = rcpt_rejected + ?3, queue_id = coalesce(?4, queue_id) WHERE id = ?1",
      "UPDATE transactions SET data_us = ?2, queue_id = coalesce(?3, queue_id) WHERE id = ?1",
      "UPDATE transactions SET outcome = 'delivered', ended_us = ?2,"
      " queue_id = coalesce(?3, queue_id), body_bytes = coalesce(?4, body_bytes) WHERE id = ?1",
      "UPDATE transactions SET outcome = 'aborted', ended_us = ?2"
      " WHERE id = ?1 AND outcome = 'open'",
      "UPDATE sessions SET close_us = ?2 WHERE id = ?1",
      "INSERT INTO event_rows (session_id, transaction_id, source, stage, time_us, argument,"
      " attributes, set_id, base_id) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)",
      "UPDATE sessions SET protocol = ?2 WHERE id = ?1",
      "UPDATE transactions SET queue_id = coalesce(queue_id, ?2),"
      " message_bytes = coalesce(?3, message_bytes) WHERE id = ?1",
      "UPDATE sessions SET close_us = coalesce(close_us, ?2) WHERE id = ?1",
      "INSERT INTO attribute_sets (attributes) VALUES (?1)",
  });
  if (!prepared) return prepared.status();
  auto& p = prepared.value();
  auto statements = std::unique_ptr<Statements>(new Statements{
      std::move(p[0]), std::move(p[1]), std::move(p[2]),
      std::move(p[3]), std::move(p[4]), std::move(p[5]),
      std::move(p[6]), std::move(p[7]), std::move(p[8]),
      std::move(p[9]), std::move(p[10]), std::move(p[11])});
  return std::unique_ptr<EventWriter>(
      new EventWriter(db, std::move(joiner).value(), std::move(statements)));
}

EventWriter::EventWriter(sqlite::Database& db, std::unique_ptr<SessionJoiner> joiner,
                         std::unique_ptr<Statements> statements)
    : db_(db), joiner_(std::move(joiner)), statements_(std::move(statements)) {}

EventWriter::~EventWriter() = default;

Status EventWriter::apply(const Event& event) {
  Status applied = event.source == Source::milter ? apply_milter(event) : apply_joined(event);
  if (applied) return applied;  // the context is formatted only for an error
  return applied.context(fmt::format("{} {} event", to_string(event.source),
                                     to_string(event.stage)));
}

Status EventWriter::new_attribute_set(std::vector<Attribute> attributes,
                                      std::shared_ptr<const AttributeBase>& set) {
  Status inserted = statements_->insert_set.bind(1, attributes_to_json(attributes)).run();
  if (!inserted) return inserted.context("insert attribute set");
  set = std::make_shared<const AttributeBase>(
      AttributeBase{db_.last_insert_rowid(), std::move(attributes)});
  return Status::ok();
}

// The smaller patch, against the set of the event's kind or the stream's
// base row, if one is at most half the whole; else a new set when the event
// shares most of itself with the last event of its kind that matched
// neither, or else whole. A few attributes (most milter stages have none)
// are written whole: a patch and its set could not be smaller.
Result<EventWriter::StoredAttributes> EventWriter::stored_attributes(
    const Event& event, const std::shared_ptr<const AttributeBase>& base) {
  constexpr std::size_t whole_below_bytes = 32;
  static const std::vector<Attribute> no_attributes;
  const std::size_t slot = static_cast<std::size_t>(event.source) * stage_count +
                           static_cast<std::size_t>(event.stage);
  auto& set = memory_.sets[slot];
  AttributePatch patch = attributes_patch(event.attributes, set ? set->attributes : no_attributes);
  if (patch.whole_bytes < whole_below_bytes) {
    return StoredAttributes{attributes_to_json(event.attributes), {}, {}, false};
  }
  std::optional<AttributePatch> on_base;
  if (base) on_base = attributes_patch(event.attributes, base->attributes);
  const bool set_fits = set && patch.text.size() * 2 <= patch.whole_bytes;
  const bool base_fits = on_base && on_base->text.size() * 2 <= on_base->whole_bytes;
  if (base_fits && (!set_fits || on_base->text.size() < patch.text.size())) {
    return StoredAttributes{std::move(on_base->text), {}, base->id, false};
  }
  if (set_fits) return StoredAttributes{std::move(patch.text), set->id, {}, false};
  auto& missed = memory_.missed[slot];
  std::vector<Attribute> common =
      common_attributes(event.attributes, missed ? *missed : no_attributes);
  if (json_bytes(common) * 2 < patch.whole_bytes) {
    missed = std::make_shared<const std::vector<Attribute>>(distinct_attributes(event.attributes));
    return StoredAttributes{attributes_to_json(event.attributes), {}, {}, true};
  }
  if (Status made = new_attribute_set(std::move(common), set); !made) return made;
  missed.reset();
  return StoredAttributes{attributes_patch(event.attributes, set->attributes).text, set->id,
                          {}, false};
}

// `base`: the stream's base row in this session.
Status EventWriter::insert_event(const Event& event, std::int64_t session_id,
                                 std::int64_t transaction_id,
                                 std::shared_ptr<const AttributeBase>& base) {
  auto stored = stored_attributes(event, base);
  if (!stored) return stored.status();
  Status inserted =
      statements_->insert_event.bind(1, session_id)
          .bind(2, transaction_id ? std::optional<std::int64_t>(transaction_id) : std::nullopt)
          .bind(3, to_string(event.source))
          .bind(4, to_string(event.stage))
          .bind(5, event.time_us)
          .bind(6, event.argument)
          .bind(7, stored.value().text)
          .bind(8, stored.value().set_id)
          .bind(9, stored.value().base_id)
          .run();
  if (!inserted) return inserted.context("insert event");
  if (stored.value().next_base) {
    base = std::make_shared<const AttributeBase>(
        AttributeBase{db_.last_insert_rowid(), distinct_attributes(event.attributes)});
  }
  return Status::ok();
}

// ---- milter: the stream is the connection ----

Status EventWriter::open_milter_session(const Event& event, bool partial) {
  const Endpoints endpoints = endpoints_of(event);
  if (!partial) {
    auto adopted = joiner_->adopt_for_milter(endpoints, event.stream, event.time_us);
    if (!adopted) return adopted.status();
    if (adopted.value()) {
      memory_.milter[event.stream] = StreamState{*adopted.value(), 0, 0, false, nullptr};
      return Status::ok();
    }
  }
  Status inserted = statements_->insert_session.bind(1, event.stream)
                        .bind(2, endpoints.client_addr.empty()
                                     ? std::nullopt
                                     : std::optional<std::string>(endpoints.client_addr))
                        .bind(3, endpoints.client_port)
                        .bind(4, endpoints.client_name)
                        .bind(5, endpoints.client_ptr)
                        .bind(6, endpoints.server_addr)
                        .bind(7, endpoints.server_port)
                        .bind(8, event.time_us)
                        .bind(9, std::int64_t{partial ? 1 : 0})
                        .run();
  if (!inserted) return inserted.context("insert session");
  memory_.milter[event.stream] = StreamState{db_.last_insert_rowid(), 0, 0, false, nullptr};
  return Status::ok();
}

Result<EventWriter::StreamState*> EventWriter::milter_stream(const Event& event) {
  if (event.stage == Stage::connect) {
    // A connect always starts a session, even on a reused stream name.
    if (Status opened = open_milter_session(event, false); !opened) return opened;
  } else if (!memory_.milter.contains(event.stream)) {
    // Its connect was never seen (the sensor started mid-session, or the
    // connect event was dropped): keep the events in a partial session.
    if (Status opened = open_milter_session(event, true); !opened) return opened;
  }
  return &memory_.milter.at(event.stream);
}

Status EventWriter::begin_transaction(const Event& event, StreamState& stream) {
  auto id = joiner_->transaction(stream.session_id, event.transaction, event.argument,
                                 event.time_us);
  if (!id) return id.status().context("open transaction");
  stream.transaction_id = id.value();
  stream.transaction_seq = event.transaction;
  stream.transaction_open = true;
  return Status::ok();
}

Status EventWriter::end_transaction(const Event& event, StreamState& stream, bool delivered) {
  if (!stream.transaction_open) return Status::ok();
  stream.transaction_open = false;
  return delivered
             ? statements_->deliver_transaction.bind(1, stream.transaction_id)
                   .bind(2, event.time_us)
                   .bind(3, to_text(event.attribute("queue_id")))
                   .bind(4, to_number(event.attribute("body_bytes")))
                   .run()
             : statements_->abort_transaction.bind(1, stream.transaction_id)
                   .bind(2, event.time_us)
                   .run();
}

Status EventWriter::update_from_milter(const Event& event, StreamState& stream) {
  const auto queue_id = to_text(event.attribute("queue_id"));
  switch (event.stage) {
    case Stage::helo:
      return statements_->record_helo.bind(1, stream.session_id).bind(2, event.argument).run();
    case Stage::mail:
      // A MAIL inside an open transaction means the previous one was aborted
      // without an abort event reaching us.
      if (Status ended = end_transaction(event, stream, false); !ended) return ended;
      return begin_transaction(event, stream);
    case Stage::rcpt: {
      if (!stream.transaction_open) return Status::ok();
      const bool rejected = event.attribute("rejected") == "1";
      return statements_->record_rcpt.bind(1, stream.transaction_id)
          .bind(2, std::int64_t{rejected ? 0 : 1})
          .bind(3, std::int64_t{rejected ? 1 : 0})
          .bind(4, queue_id)
          .run();
    }
    case Stage::data:
      if (!stream.transaction_open) return Status::ok();
      return statements_->record_data.bind(1, stream.transaction_id)
          .bind(2, event.time_us)
          .bind(3, queue_id)
          .run();
    case Stage::eom:
      return end_transaction(event, stream, true);
    case Stage::abort:
      return end_transaction(event, stream, false);
    case Stage::close:
      if (Status ended = end_transaction(event, stream, false); !ended) return ended;
      return statements_->close_session.bind(1, stream.session_id).bind(2, event.time_us).run();
    default:
      return Status::ok();
  }
}

Status EventWriter::apply_milter(const Event& event) {
  auto found = milter_stream(event);
  if (!found) return found.status();
  StreamState& stream = *found.value();
  if (Status updated = update_from_milter(event, stream); !updated) return updated;
  // The event row belongs to the transaction it was part of, including the
  // eom or abort that just ended it.
  const bool in_transaction = event.transaction != 0 && event.transaction == stream.transaction_seq;
  Status inserted = insert_event(event, stream.session_id,
                                 in_transaction ? stream.transaction_id : 0, stream.base);
  if (event.stage == Stage::close) memory_.milter.erase(event.stream);
  return inserted;
}

}  // namespace smtpscope
