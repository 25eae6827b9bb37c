#include "client_history.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "text_escape.h"

namespace smtpscope::policy {
namespace {

constexpr std::size_t max_cached_clients = 100000;

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

DatabaseHistory::DatabaseHistory(std::string database_path, std::chrono::seconds cache_for)
    : path_(std::move(database_path)), cache_for_(cache_for) {}

std::optional<ClientHistory> DatabaseHistory::query(const std::string& client_address,
                                                    std::int64_t since_us) {
  if (!db_) {
    auto opened = sqlite::Database::open(path_, false, 50);
    if (!opened) {
      spdlog::warn("policy event=history-unavailable error=\"{}\"", opened.message());
      return std::nullopt;
    }
    db_ = std::move(opened).value();
  }
  auto statement = db_->prepare(
      "SELECT count(DISTINCT s.id), coalesce(sum(t.outcome = 'aborted'), 0),"
      " coalesce(sum(t.rcpt_rejected), 0) FROM sessions s"
      " LEFT JOIN transactions t ON t.session_id = s.id"
      " WHERE s.client_addr = ?1 AND s.connect_us >= ?2");
  if (!statement) {
    spdlog::warn("policy event=history-unavailable error=\"{}\"", statement.message());
    return std::nullopt;
  }
  auto& q = statement.value();
  q.bind(1, client_address).bind(2, since_us);
  auto row = q.step();
  if (!row || !row.value()) {
    spdlog::warn("policy event=history-unavailable client={} error=\"{}\"",
                 log_quoted(client_address, 64), row ? "no row" : row.message());
    return std::nullopt;
  }
  ClientHistory history{q.column_int(0), q.column_int(1), q.column_int(2), {}, {}, {}};
  q.reset();
  add_analysis(client_address, since_us, history);
  return history;
}

// What the analysis concluded about the client's sessions (empty until
// `smtpscope clients/report/correlate` ran, or on an older schema).
void DatabaseHistory::add_analysis(const std::string& client_address, std::int64_t since_us,
                                   ClientHistory& history) {
  auto statement = db_->prepare(
      "SELECT a.helo_quirks, a.fingerprint, a.patterns FROM session_analysis a"
      " JOIN sessions s ON s.id = a.session_id WHERE s.client_addr = ?1 AND s.connect_us >= ?2");
  if (!statement) return;
  auto& q = statement.value();
  q.bind(1, client_address).bind(2, since_us);
  auto split_into = [](const std::string& words, std::set<std::string>& out) {
    for (std::size_t start = 0; start < words.size();) {
      const std::size_t end = std::min(words.find(' ', start), words.size());
      if (end > start) out.insert(words.substr(start, end - start));
      start = end + 1;
    }
  };
  for (auto row = q.step(); row && row.value(); row = q.step()) {
    split_into(q.column_text(0), history.helo_quirks);
    history.fingerprints.insert(q.column_text(1));
    split_into(q.column_text(2), history.patterns);
  }
}

std::optional<ClientHistory> DatabaseHistory::history(const std::string& client_address,
                                                      std::int64_t within_us) {
  const auto now = std::chrono::steady_clock::now();
  const auto key = std::make_pair(client_address, within_us);
  if (auto found = cache_.find(key); found != cache_.end() && now - found->second.at < cache_for_) {
    return found->second.value;
  }
  auto fresh = query(client_address, now_us() - within_us);
  if (!fresh) return std::nullopt;
  if (cache_.size() >= max_cached_clients) cache_.clear();
  cache_[key] = Cached{*fresh, now};
  return fresh;
}

}  // namespace smtpscope::policy
