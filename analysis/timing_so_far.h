// A client's timing as the stored analysis knows it when one of its
// sessions is analysed: the connects of its earlier analysed sessions (up
// to max_earlier_sessions, ordered by connect time, then session id) and
// this session's. It depends only on which sessions are analysed, never on
// how they were grouped into passes: a client's sessions analysed in one
// pass, in many, or again after late evidence conclude the same (before,
// a client met again within one pass was timed over all its sessions of
// that pass, but over only 200 when a pass began; a session re-analysed
// in a pass with newer ones hid the sessions between them).
// Within one pass, sessions come in (connect_us, id) order: a client's
// timing is read from session_analysis when the pass first meets it (and
// again for a session older than one analysed before), then carried on
// in memory while nothing analysed lies after it. Sessions concluded but
// not yet written (a pass that reads before it writes) count as analysed.
// Not thread-safe; one per pass, on that pass's connection.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "client_timing.h"
#include "result.h"
#include "session_reader.h"
#include "sqlite.h"

namespace smtpscope::analysis {

// Bounds a client's history read per pass (a monitor of years).
inline constexpr std::int64_t max_earlier_sessions = 100000;

class TimingSoFar {
 public:
  static Result<TimingSoFar> prepare(sqlite::Database& db);

  // The client's timing up to and including `session`, which then counts
  // as analysed for the sessions after it.
  Result<ClientTiming> until(const SessionRecord& session);

 private:
  struct Known {
    TimingSums sums;
    std::int64_t last_connect_us = 0;
    std::int64_t last_id = 0;
  };
  struct Connect {
    std::int64_t connect_us;
    std::int64_t id;
    bool operator<(const Connect& o) const {
      return connect_us < o.connect_us || (connect_us == o.connect_us && id < o.id);
    }
  };
  TimingSoFar(sqlite::Statement earlier, sqlite::Statement later)
      : earlier_(std::move(earlier)), later_(std::move(later)) {}
  Result<std::vector<Connect>> read_earlier(const SessionRecord& session);
  Result<bool> analysed_later(const SessionRecord& session);

  sqlite::Statement earlier_;
  sqlite::Statement later_;
  std::unordered_map<std::string, Known> known_;                  // carried on in memory
  std::unordered_map<std::string, std::vector<Connect>> passed_;  // this pass's, per client
};

}  // namespace smtpscope::analysis
