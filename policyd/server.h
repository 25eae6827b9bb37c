// The policy server's network side: one thread, one epoll loop, serving
// many concurrent Postfix connections (each sends one request at a time and
// waits for the answer) on unix and TCP listeners, or the single spawn(8)
// connection on stdin/stdout. Requests go to a RequestHandler; answers go
// back as "action=...\n\n". A protocol error, an oversized request, or a
// client stalled mid-request closes that connection only (Postfix retries),
// after answering every complete request before it. Idle connections are
// closed after idle_timeout. A connection's unsent answers are bounded by
// max_output_bytes: at the bound the server stops reading its requests (at
// most one read of input is held, unparsed) until the client reads, and
// closes it when it has not read for request_timeout; the socket's send
// buffer is set to the same size. A client that stops sending (end of file)
// is closed once its answers are written. Every request parsed is answered
// and handed to the RequestHandler; nothing else is. Not thread-safe: run()
// owns everything.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "listener.h"
#include "metrics_counter.h"
#include "policy_request.h"
#include "result.h"

namespace smtpscope::policy {

class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // The action (without "action=") for one request on connection `stream`.
  // The request is handed over: its strings may be moved into the record.
  virtual std::string answer(Request&& request, const std::string& stream) = 0;
};

struct ServerOptions {
  std::vector<ListenSpec> listen;
  mode_t socket_mode = 0660;
  Limits limits;
  std::chrono::seconds idle_timeout{600};
  std::chrono::seconds request_timeout{100};
  std::size_t max_connections = 4096;
  std::size_t max_output_bytes = 64 * 1024;  // unsent answers per connection, at most
  Gauge* connections_open = nullptr;  // kept current when set (metrics)
};

struct ServerStats {
  std::uint64_t accepted = 0;
  std::uint64_t refused = 0;  // over max_connections
  std::uint64_t requests = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t timeouts = 0;  // stalled mid-request
  std::uint64_t unread = 0;    // closed with answers not read within request_timeout
  std::size_t open = 0;
};

class Server {
 public:
  // Opens every listener; errors name the listener.
  static Result<std::unique_ptr<Server>> create(ServerOptions options, RequestHandler& handler);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Serves until SIGTERM or SIGINT (which the caller must have blocked in
  // every thread), or in stdio mode until the connection ends. SIGHUP calls
  // on_reload and goes on.
  Status run(const std::function<void()>& on_reload);

  ServerStats stats() const;

 private:
  struct Impl;
  explicit Server(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace smtpscope::policy
