#include "metrics_http.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>


namespace smtpscope {
namespace {

using Clock = std::chrono::steady_clock;

void close_fd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// Waits until `fd` is ready for `events` or the deadline or a stop; true when ready.
bool wait_ready(int fd, short events, int stop_fd, Clock::time_point deadline) {
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || fds[1].revents != 0) return false;
    return true;
  }
}

// The request head (up to the blank line), or an HTTP status to answer with.
struct Head {
  std::string text;
  int status = 0;  // 0: complete
};

Head read_head(int client, int stop_fd, const MetricsHttpOptions& options) {
  Head head;
  const auto deadline = Clock::now() + options.io_timeout;
  char buffer[2048];
  while (head.text.find("\r\n\r\n") == std::string::npos &&
         head.text.find("\n\n") == std::string::npos) {
    if (head.text.size() >= options.max_request_bytes) return {{}, 431};
    if (!wait_ready(client, POLLIN, stop_fd, deadline)) return {{}, -1};
    const std::size_t room = std::min(sizeof buffer, options.max_request_bytes - head.text.size());
    const ssize_t got = ::recv(client, buffer, room, 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got <= 0) return {{}, -1};
    head.text.append(buffer, static_cast<std::size_t>(got));
  }
  return head;
}

bool write_all(int client, std::string_view data, int stop_fd, const MetricsHttpOptions& options) {
  const auto deadline = Clock::now() + options.io_timeout;
  while (!data.empty()) {
    if (!wait_ready(client, POLLOUT, stop_fd, deadline)) return false;
    const ssize_t sent = ::send(client, data.data(), data.size(), MSG_NOSIGNAL);
    if (sent < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (sent <= 0) return false;
    data.remove_prefix(static_cast<std::size_t>(sent));
  }
  return true;
}

std::string response(int status, std::string_view reason, std::string_view content_type,
                     std::string_view body, std::string_view extra = {}) {
  return fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n{}Connection: close\r\n\r\n{}",
      status, reason, content_type, body.size(), extra, body);
}

std::string error_response(int status) {
  switch (status) {
    case 404: return response(404, "Not Found", "text/plain", "try /metrics\n");
    case 405: return response(405, "Method Not Allowed", "text/plain", "GET only\n", "Allow: GET\r\n");
    case 431:
      return response(431, "Request Header Fields Too Large", "text/plain", "request too large\n");
    default: return response(400, "Bad Request", "text/plain", "bad request\n");
  }
}

}  // namespace

Result<HostPort> parse_metrics_listen(const std::string& listen) {
  std::string host;
  std::string port_text = listen;
  if (const auto colon = listen.rfind(':'); colon != std::string::npos) {
    host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
      host = host.substr(1, host.size() - 2);
    } else if (host.find(':') != std::string::npos) {
      return Status::error("\"" + listen + "\": an IPv6 address needs brackets, [::1]:PORT");
    }
  }
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.data() + port_text.size() ||
      port > 65535) {
    return Status::error("\"" + listen + "\": expected HOST:PORT, [IPv6]:PORT or PORT");
  }
  return HostPort{host.empty() ? "127.0.0.1" : host, static_cast<std::uint16_t>(port)};
}

Result<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::bind(const std::string& listen,
                                                                   Body body,
                                                                   MetricsHttpOptions options) {
  auto spec = parse_metrics_listen(listen);
  if (!spec) return spec.status();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(spec.value().port);
  if (int rc = ::getaddrinfo(spec.value().host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Status::error("metrics listen \"" + listen + "\": " + ::gai_strerror(rc));
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> addresses(found, ::freeaddrinfo);
  int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return Status::error(std::string("metrics socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, 16) != 0) {
    const std::string error = std::strerror(errno);
    ::close(fd);
    return Status::error("metrics listen \"" + listen + "\": " + error);
  }
  sockaddr_storage bound{};
  socklen_t length = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &length);
  const std::uint16_t bound_port =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  const int stop_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd < 0) {
    ::close(fd);
    return Status::error(std::string("metrics eventfd: ") + std::strerror(errno));
  }
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(
      fd, stop_fd, bound_port, std::move(body), options));
}

MetricsHttpServer::MetricsHttpServer(int listen_fd, int stop_fd, std::uint16_t port, Body body,
                                     MetricsHttpOptions options)
    : listen_fd_(listen_fd), stop_fd_(stop_fd), port_(port), body_(std::move(body)),
      options_(options) {}

MetricsHttpServer::~MetricsHttpServer() {
  stop();
  close_fd(listen_fd_);
  close_fd(stop_fd_);
}

void MetricsHttpServer::start() {
  if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
}

void MetricsHttpServer::stop() {
  const std::uint64_t one = 1;
  if (stop_fd_ >= 0) (void)!::write(stop_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void MetricsHttpServer::run() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("metrics event=poll-failed error=\"{}\"", std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (client < 0) {
      // EMFILE and friends: wait a little rather than spin on a ready listener.
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) ::usleep(100 * 1000);
      continue;
    }
    handle(client);
    ::close(client);
  }
}

void MetricsHttpServer::handle(int client) {
  const Head head = read_head(client, stop_fd_, options_);
  if (head.status < 0) {
    if (auto suppressed = peer_log_.admit()) {
      spdlog::info("metrics event=request-dropped reason=\"incomplete request or timeout\" "
                   "suppressed={}", *suppressed);
    }
    return;
  }
  std::string answer;
  if (head.status != 0) {
    answer = error_response(head.status);
  } else {
    const std::string_view text = head.text;
    const std::string_view line = text.substr(0, text.find_first_of("\r\n"));
    const auto first_space = line.find(' ');
    const auto second_space = line.find(' ', first_space + 1);
    if (first_space == std::string_view::npos || second_space == std::string_view::npos ||
        !line.substr(second_space + 1).starts_with("HTTP/1.")) {
      answer = error_response(400);
    } else if (line.substr(0, first_space) != "GET") {
      answer = error_response(405);
    } else {
      std::string_view target = line.substr(first_space + 1, second_space - first_space - 1);
      target = target.substr(0, target.find('?'));
      answer = target == "/metrics"
                   ? response(200, "OK", "text/plain; version=0.0.4; charset=utf-8", body_())
                   : error_response(404);
    }
  }
  if (!write_all(client, answer, stop_fd_, options_)) {
    if (auto suppressed = peer_log_.admit()) {
      spdlog::info("metrics event=answer-dropped reason=\"scraper did not read\" suppressed={}",
                   *suppressed);
    }
  }
}

}  // namespace smtpscope
