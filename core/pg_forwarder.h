// Forwards what one SQLite file records into a fleet store (PostgreSQL):
// the daemons and ingest keep writing and joining in the local file as on
// one host, and this copies its rows to the shared store in batches.
//
// Promises:
//  - Each SQLite file is one origin of the fleet store (schema/pg/
//    010_origins.sql); its rows get ids origin * 2^40 + their local id, so
//    files of many hosts never collide, and their references (session,
//    transaction, attribute set, base row) are moved alike.
//  - A batch is one transaction on each side: the rows and the origin's
//    watermarks move together in PostgreSQL, so a forwarder stopped at any
//    point (or a lost connection) resumes where the fleet store says,
//    sending every event row once and in id order. Changed rows
//    (sessions, transactions, analysis, timing) replace their earlier copy.
//  - Sessions and transactions are sent as they stand when an event row of
//    theirs is sent (every change of them comes with one); what the
//    analysis writes comes from forward_queue (schema/010_forwarding.sql).
//  - A session without a host (the milter and policy server name none) is
//    sent with the origin's host name, and so is its analysis.
//  - Text PostgreSQL cannot hold becomes U+FFFD (pg_copy_text.h), counted.
//  - Nothing is deleted from the local file: it stays a whole database of
//    this host; forwarded rows are pruned there by `db prune` as before.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "pg_connection.h"
#include "result.h"
#include "sqlite.h"

namespace smtpscope::pg {

// Ids in the fleet store: origin << origin_shift | local id.
constexpr int origin_shift = 40;

struct ForwardCounts {
  std::int64_t events = 0;
  std::int64_t sessions = 0;
  std::int64_t transactions = 0;
  std::int64_t analyses = 0;
  std::int64_t other_rows = 0;      // attribute sets, drops, remote events, timing, fingerprints
  std::int64_t replaced_values = 0;  // values with bytes PostgreSQL text cannot hold
  bool caught_up = false;            // nothing left to send after this batch
};

class Forwarder {
 public:
  // Registers `local` as an origin of `fleet` (its instance name is made
  // and kept in forward_state the first time; from then on the analysis
  // triggers note what to send). `host` names sessions that have none.
  // Both connections must outlive the Forwarder; `fleet` is migrated.
  static Result<std::unique_ptr<Forwarder>> attach(sqlite::Database& local, Connection& fleet,
                                                   const std::string& host);

  // Sends at most max_events event rows, the sessions and transactions
  // they touch, and the queued analysis rows, in one transaction each side.
  Result<ForwardCounts> forward_batch(std::int64_t max_events);

  std::int64_t origin() const { return origin_; }

 private:
  // How far a committed batch went: the fleet store's event watermark, and
  // the last forward_queue entry sent (0: none).
  struct Reached {
    std::int64_t events_done = 0;
    std::int64_t queue_done = 0;
  };
  Forwarder(sqlite::Database& local, Connection& fleet, std::string host, std::int64_t origin)
      : local_(local), fleet_(fleet), host_(std::move(host)), origin_(origin) {}
  Result<Reached> send_batch(std::int64_t max_events, ForwardCounts& counts);
  Status prepare_staging();

  sqlite::Database& local_;
  Connection& fleet_;
  std::string host_;
  std::int64_t origin_;
  bool staging_ready_ = false;
};

}  // namespace smtpscope::pg
