#include "queue_join.h"

#include "text_escape.h"

namespace smtpscope::ingest {
namespace {

std::string_view field(const LogRecord& record, std::string_view name) {
  for (std::size_t i = 0; i < record.field_count; ++i) {
    if (record.fields[i].name == name) return record.fields[i].value;
  }
  return {};
}

void set(Event& event, std::string_view name, std::string value) {
  for (Attribute& a : event.attributes) {
    if (a.name == name) {
      a.value = std::move(value);
      return;
    }
  }
  event.add(std::string(name), std::move(value));
}

}  // namespace

std::string QueueJoin::key(std::string_view host, std::string_view queue_id) {
  std::string out;
  out.reserve(host.size() + 1 + queue_id.size());
  out.append(host).append(1, '\n').append(queue_id);
  return out;
}

void QueueJoin::remember(std::string_view host, const Event& queued, std::size_t index) {
  const auto queue_id = queued.attribute("queue_id");
  if (!queue_id || queue_id->empty()) return;
  while (sessions_.size() >= max_remembered && !order_.empty()) {
    sessions_.erase(order_.front());
    order_.pop_front();
  }
  if (order_.size() > 2 * max_remembered) {  // keys of entries erased by a join
    std::deque<std::string> live;
    for (std::string& k : order_) {
      if (sessions_.contains(k)) live.push_back(std::move(k));
    }
    order_.swap(live);
  }
  auto port = queued.attribute("client_port");
  std::string k = key(host, *queue_id);
  sessions_[k] = Session{queued.stream,
                         std::string(queued.attribute("client_name").value_or("")),
                         std::string(queued.attribute("client_addr").value_or("")),
                         port ? std::optional<std::string>(*port) : std::nullopt,
                         index,
                         generation_};
  order_.push_back(std::move(k));
}

bool QueueJoin::join(std::string_view host, std::string_view queue_id, Event& event) {
  const auto found = sessions_.find(key(host, queue_id));
  if (found == sessions_.end()) return false;
  const Session& s = found->second;
  event.stream = s.stream;
  set(event, "client_name", s.client_name);
  set(event, "client_addr", s.client_addr);
  if (s.client_port) set(event, "client_port", *s.client_port);
  return true;
}

bool QueueJoin::add_sender(std::string_view host, const LogRecord& qmgr,
                           std::vector<Event>& pending, std::size_t max_value_bytes) {
  const std::string_view queue_id = field(qmgr, "queue_id");
  const auto found = sessions_.find(key(host, queue_id));
  if (found == sessions_.end()) return false;
  const std::size_t index = found->second.index;
  const bool current = found->second.generation == generation_;
  sessions_.erase(found);  // qmgr logs it again at each retry: once is enough
  if (!current || index >= pending.size()) return false;
  Event& queued = pending[index];
  if (queued.attribute("queue_id") != queue_id) return false;
  queued.add("from", std::string(bounded(field(qmgr, "from"), max_value_bytes)));
  if (const std::string_view size = field(qmgr, "size"); !size.empty()) {
    queued.add("size", std::string(bounded(size, max_value_bytes)));
  }
  return true;
}

}  // namespace smtpscope::ingest
