// Finds the session an event belongs to when it comes from a sensor that
// does not own the connection (the policy server, the log), and lets the
// milter adopt a session another sensor opened first. The key is the client
// address and port plus a time window; every match records how it was made
// (sessions.join_method). Runs inside the writer's BEGIN IMMEDIATE
// transaction, so find-or-create is atomic across processes. One per writer
// thread; not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "event.h"
#include "result.h"
#include "sqlite.h"

namespace smtpscope {

// The client and server endpoints an event names.
struct Endpoints {
  std::string client_addr;
  std::optional<std::int64_t> client_port;
  std::optional<std::string> client_name;
  std::optional<std::string> client_ptr;
  std::optional<std::string> server_addr;
  std::optional<std::int64_t> server_port;
  // The mail server (the log's syslog host): sessions of two hosts never
  // join; a session no sensor has named a host for joins any.
  std::optional<std::string> host;
};

class SessionJoiner {
 public:
  static Result<std::unique_ptr<SessionJoiner>> create(sqlite::Database& db);
  ~SessionJoiner();

  // A session of another sensor this milter connect should take over: same
  // endpoints, no milter events yet, first seen from shortly before the
  // connect to an hour after. Updates it to the connect's facts.
  Result<std::optional<std::int64_t>> adopt_for_milter(const Endpoints& endpoints,
                                                       const std::string& stream,
                                                       std::int64_t connect_us);

  // The session the event of `source` at time_us belongs to: the most recent
  // one with these endpoints that was open then (`source` is added to its
  // sources, once); else a new one, opened by this sensor (partial: its
  // connect was not observed).
  Result<std::int64_t> find_or_open(const Endpoints& endpoints, const std::string& source,
                                    const std::string& stream, std::int64_t time_us,
                                    bool observed_connect);

  // Without a client port (smtpd_client_port_logging = no): the session of
  // this address whose connect is nearest to time_us, within a couple of
  // seconds (log times have one-second resolution), that `source` has not
  // joined yet; else a new one.
  Result<std::int64_t> find_or_open_by_address(const Endpoints& endpoints,
                                               const std::string& source,
                                               const std::string& stream, std::int64_t time_us,
                                               bool observed_connect);

  // The transaction row of ordinal seq, created if missing.
  Result<std::int64_t> transaction(std::int64_t session_id, std::int64_t seq,
                                   const std::optional<std::string>& mail_from,
                                   std::int64_t time_us);

 private:
  struct Statements;
  SessionJoiner(sqlite::Database& db, std::unique_ptr<Statements> statements);
  Result<std::int64_t> join_or_open(sqlite::Statement& find, const char* join_method,
                                    const Endpoints& endpoints, const std::string& source,
                                    const std::string& stream, std::int64_t time_us,
                                    bool observed_connect);
  Result<std::int64_t> open(const Endpoints& endpoints, const std::string& source,
                            const std::string& stream, std::int64_t time_us,
                            bool observed_connect);
  sqlite::Database& db_;
  std::unique_ptr<Statements> statements_;
};

}  // namespace smtpscope
