// The database's answer to "what do we know about this client": sessions,
// aborted transactions and rejected recipients within a window, and the
// HELO quirks, fingerprints and patterns the analysis found, read with
// its own read-only connection and cached per client for a while, so rules
// that ask cost the event loop a query per client per cache period at most.
// Not thread-safe (used by the policy server's event loop only).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "rules.h"
#include "sqlite.h"

namespace smtpscope::policy {

class DatabaseHistory final : public HistorySource {
 public:
  DatabaseHistory(std::string database_path, std::chrono::seconds cache_for);
  std::optional<ClientHistory> history(const std::string& client_address,
                                       std::int64_t within_us) override;

 private:
  std::optional<ClientHistory> query(const std::string& client_address, std::int64_t since_us);
  void add_analysis(const std::string& client_address, std::int64_t since_us,
                    ClientHistory& history);

  struct Cached {
    ClientHistory value;
    std::chrono::steady_clock::time_point at;
  };
  std::string path_;
  std::chrono::seconds cache_for_;
  std::unique_ptr<sqlite::Database> db_;
  std::map<std::pair<std::string, std::int64_t>, Cached> cache_;
};

}  // namespace smtpscope::policy
