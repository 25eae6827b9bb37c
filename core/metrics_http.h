// The metrics endpoint: a tiny HTTP/1.x server on one thread of its own that
// answers GET /metrics with the text exposition (Content-Type text/plain;
// version=0.0.4) and anything else with 404 or 405. One connection at a
// time, closed after the answer. Bounded: the request head is at most
// max_request_bytes (else 431), and reading it and writing the answer each
// have a deadline (io_timeout), so a slow or hostile scraper costs at most
// that thread a few seconds and never blocks the daemon. Peer faults are
// logged rate-limited and never stop the server.
// Listen specs: "HOST:PORT", "[IPv6]:PORT", ":PORT" or "PORT"; without a
// host the endpoint is bound to 127.0.0.1 (loopback by default). Port 0
// takes a free port (port() says which).
// bind() runs before a daemon forks into the background; start() starts
// the thread afterwards (threads do not survive fork). stop() is idempotent
// and joins; the destructor stops.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "rate_limiter.h"
#include "result.h"

namespace smtpscope {

struct MetricsHttpOptions {
  std::size_t max_request_bytes = 8192;
  std::chrono::milliseconds io_timeout{5000};
};

class MetricsHttpServer {
 public:
  using Body = std::function<std::string()>;

  static Result<std::unique_ptr<MetricsHttpServer>> bind(const std::string& listen, Body body,
                                                         MetricsHttpOptions options = {});
  ~MetricsHttpServer();
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  void start();
  void stop();
  std::uint16_t port() const { return port_; }

 private:
  MetricsHttpServer(int listen_fd, int stop_fd, std::uint16_t port, Body body,
                    MetricsHttpOptions options);
  void run();
  void handle(int client);

  int listen_fd_;
  int stop_fd_;  // eventfd: readable once stop() was called
  std::uint16_t port_;
  Body body_;
  MetricsHttpOptions options_;
  RateLimiter peer_log_{std::chrono::seconds(60)};
  std::thread thread_;
};

// Splits a listen spec into host and port ("" host means 127.0.0.1).
struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};
Result<HostPort> parse_metrics_listen(const std::string& listen);

}  // namespace smtpscope
