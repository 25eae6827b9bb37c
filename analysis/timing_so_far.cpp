#include "timing_so_far.h"

#include <algorithm>

namespace smtpscope::analysis {

Result<TimingSoFar> TimingSoFar::prepare(sqlite::Database& db) {
  auto all = db.prepare_all({
      "SELECT connect_us, session_id FROM session_analysis WHERE client_addr = ?1 AND"
      " (connect_us < ?2 OR (connect_us = ?2 AND session_id < ?3))"
      " ORDER BY connect_us DESC, session_id DESC LIMIT ?4",
      "SELECT 1 FROM session_analysis WHERE client_addr = ?1 AND"
      " (connect_us > ?2 OR (connect_us = ?2 AND session_id > ?3)) LIMIT 1"});
  if (!all) return all.status();
  return TimingSoFar(std::move(all.value()[0]), std::move(all.value()[1]));
}

// The client's analysed sessions before this one, stored or of this pass
// (a session analysed again counts once), oldest first.
Result<std::vector<TimingSoFar::Connect>> TimingSoFar::read_earlier(const SessionRecord& s) {
  const Connect self{s.connect_us, s.id};
  earlier_.bind(1, s.client_addr).bind(2, s.connect_us).bind(3, s.id).bind(4, max_earlier_sessions);
  std::vector<Connect> out;
  for (;;) {
    auto row = earlier_.step();
    if (!row) {
      earlier_.reset();
      return row.status();
    }
    if (!row.value()) break;
    out.push_back({earlier_.column_int(0), earlier_.column_int(1)});
  }
  earlier_.reset();
  if (auto passed = passed_.find(s.client_addr); passed != passed_.end()) {
    for (const Connect& c : passed->second) {
      if (c < self) out.push_back(c);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end(),
                        [](const Connect& a, const Connect& b) { return a.id == b.id; }),
            out.end());
  if (out.size() > static_cast<std::size_t>(max_earlier_sessions)) {
    out.erase(out.begin(), out.end() - max_earlier_sessions);
  }
  return out;
}

Result<bool> TimingSoFar::analysed_later(const SessionRecord& s) {
  later_.bind(1, s.client_addr).bind(2, s.connect_us).bind(3, s.id);
  auto row = later_.step();
  later_.reset();
  if (!row) return row.status();
  return row.value();
}

Result<ClientTiming> TimingSoFar::until(const SessionRecord& s) {
  const Connect self{s.connect_us, s.id};
  passed_[s.client_addr].push_back(self);
  if (auto known = known_.find(s.client_addr);
      known != known_.end() &&
      Connect{known->second.last_connect_us, known->second.last_id} < self) {
    known->second.sums.add(s.connect_us);
    known->second.last_connect_us = s.connect_us;
    known->second.last_id = s.id;
    return known->second.sums.timing();
  }
  auto earlier = read_earlier(s);
  if (!earlier) return earlier.status();
  TimingSums sums;
  for (const Connect& c : earlier.value()) sums.add(c.connect_us);
  sums.add(s.connect_us);
  auto later = analysed_later(s);
  if (!later) return later.status();
  if (later.value()) {
    known_.erase(s.client_addr);  // what lies after it is not in these sums
  } else {
    known_[s.client_addr] = Known{sums, s.connect_us, s.id};
  }
  return sums.timing();
}

}  // namespace smtpscope::analysis
