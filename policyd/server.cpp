#include "server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <unordered_map>

#include "rate_limiter.h"
#include "text_escape.h"

namespace smtpscope::policy {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::size_t read_chunk = 64 * 1024;

struct Connection {
  Connection(int in, int out, std::string name, Limits limits)
      : in_fd(in), out_fd(out), stream(std::move(name)), parser(limits),
        last_activity(Clock::now()) {}
  int in_fd;
  int out_fd;
  std::string stream;
  RequestParser parser;
  std::string pending_output;
  Clock::time_point last_activity;
  Clock::time_point request_started;  // first byte of the partial request, if any
  bool close_after_flush = false;
  bool watching_output = false;  // EPOLLOUT requested because a write would block
};

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

}  // namespace

struct Server::Impl {
  ServerOptions options;
  RequestHandler& handler;
  int epoll_fd = -1;
  int signal_fd = -1;
  std::vector<int> listeners;
  bool stdio_mode = false;
  std::unordered_map<int, std::unique_ptr<Connection>> connections;  // by in_fd
  std::unordered_map<int, Connection*> by_out_fd;  // when out_fd != in_fd
  std::uint64_t next_connection = 1;
  ServerStats stats;
  RateLimiter error_log{std::chrono::seconds(10)};
  RateLimiter refuse_log{std::chrono::seconds(10)};
  RateLimiter stall_log{std::chrono::seconds(10)};
  std::vector<Request> requests;
  std::array<char, read_chunk> read_buffer{};

  Impl(ServerOptions o, RequestHandler& h) : options(std::move(o)), handler(h) {}

  ~Impl() {
    for (auto& [fd, c] : connections) close_fds(*c);
    for (int fd : listeners) ::close(fd);
    if (signal_fd >= 0) ::close(signal_fd);
    if (epoll_fd >= 0) ::close(epoll_fd);
  }

  static void close_fds(const Connection& c) {
    ::close(c.in_fd);
    if (c.out_fd != c.in_fd) ::close(c.out_fd);
  }

  Status watch(int fd, std::uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
      return Status::error(std::string("epoll_ctl: ") + std::strerror(errno));
    }
    return Status::ok();
  }

  void rewatch(int fd, std::uint32_t events) {
    epoll_event event{};
    event.events = events;
    event.data.fd = fd;
    ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &event);
  }

  Status add_connection(int in_fd, int out_fd) {
    auto connection = std::make_unique<Connection>(
        in_fd, out_fd, fmt::format("policy:{}:{}", ::getpid(), next_connection++),
        options.limits);
    if (Status watched = watch(in_fd, EPOLLIN | EPOLLRDHUP); !watched) return watched;
    if (out_fd != in_fd) by_out_fd[out_fd] = connection.get();
    connections[in_fd] = std::move(connection);
    stats.accepted += 1;
    return Status::ok();
  }

  void close_connection(Connection& c) {
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.in_fd, nullptr);
    if (c.out_fd != c.in_fd) {
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.out_fd, nullptr);
      by_out_fd.erase(c.out_fd);
    }
    close_fds(c);
    connections.erase(c.in_fd);  // destroys c
  }

  void accept_from(int listener) {
    for (;;) {
      const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) return;  // EAGAIN, or a transient error: try at the next event
      if (connections.size() >= options.max_connections) {
        ::close(fd);
        stats.refused += 1;
        if (auto held = refuse_log.admit()) {
          spdlog::warn("policy event=refused reason=max-connections limit={} suppressed={}",
                       options.max_connections, *held);
        }
        continue;
      }
      // Answers are small writes; without this a second answer written
      // before the client acknowledged the first waits for its delayed ACK.
      // (On a unix socket the call fails harmlessly.)
      const int on = 1;
      (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
      if (Status added = add_connection(fd, fd); !added) {
        spdlog::warn("policy event=accept-failed error=\"{}\"", added.message());
        ::close(fd);
      }
    }
  }

  // Asks for EPOLLOUT only while a write would block; changes it only when
  // needed (an epoll_ctl per request would cost a syscall per answer).
  void watch_output(Connection& c, bool wanted) {
    if (c.watching_output == wanted) return;
    c.watching_output = wanted;
    if (c.out_fd == c.in_fd) {
      rewatch(c.in_fd, EPOLLIN | EPOLLRDHUP | (wanted ? EPOLLOUT : 0u));
    } else if (wanted) {
      (void)watch(c.out_fd, EPOLLOUT);
    } else {
      ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.out_fd, nullptr);
    }
  }

  // Writes what it can; true while the connection stays usable.
  bool flush(Connection& c) {
    while (!c.pending_output.empty()) {
      const ssize_t n = ::write(c.out_fd, c.pending_output.data(), c.pending_output.size());
      if (n > 0) {
        c.pending_output.erase(0, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        watch_output(c, true);
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    watch_output(c, false);
    return !c.close_after_flush;
  }

  void report_protocol_error(const Connection& c, ParseError error) {
    stats.protocol_errors += 1;
    if (auto held = error_log.admit()) {
      spdlog::warn("policy event=bad-request stream={} reason=\"{}\" text={} suppressed={}",
                   c.stream, describe(error), log_quoted(c.parser.error_context(), 80), *held);
    }
  }

  // Reads once, answers complete requests; false when the connection must
  // close. The epoll set is level-triggered, so unread input is reported
  // again: no extra read() that would only return EAGAIN.
  bool read_from(Connection& c) {
    const ssize_t n = ::read(c.in_fd, read_buffer.data(), read_buffer.size());
    if (n == 0) return false;  // the client closed
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.last_activity = Clock::now();
    requests.clear();
    const bool was_mid_request = c.parser.mid_request();
    const ParseError error = c.parser.feed(
        std::string_view(read_buffer.data(), static_cast<std::size_t>(n)), requests);
    // A request gets request_timeout from its first byte, however it trickles.
    if (c.parser.mid_request() && (!was_mid_request || !requests.empty())) {
      c.request_started = c.last_activity;
    }
    for (Request& request : requests) {
      stats.requests += 1;
      c.pending_output += "action=";
      c.pending_output += handler.answer(std::move(request), c.stream);
      c.pending_output += "\n\n";
    }
    if (error != ParseError::none) {
      report_protocol_error(c, error);
      c.close_after_flush = true;
      flush(c);
      return false;
    }
    return flush(c);
  }

  void sweep_timeouts() {
    const auto now = Clock::now();
    std::vector<Connection*> expired;
    for (auto& [fd, c] : connections) {
      if (c->parser.mid_request() ? now - c->request_started > options.request_timeout
                                  : now - c->last_activity > options.idle_timeout) {
        expired.push_back(c.get());
      }
    }
    for (Connection* c : expired) {
      if (c->parser.mid_request()) {
        stats.timeouts += 1;
        if (auto held = stall_log.admit()) {
          spdlog::warn("policy event=stalled stream={} reason=\"request not complete within {}s\" "
                       "suppressed={}",
                       c->stream, options.request_timeout.count(), *held);
        }
      }
      close_connection(*c);
    }
  }

  // True to go on serving.
  bool handle_signal(const std::function<void()>& on_reload) {
    signalfd_siginfo info{};
    while (::read(signal_fd, &info, sizeof(info)) == sizeof(info)) {
      if (info.ssi_signo == SIGHUP) {
        on_reload();
      } else {
        spdlog::info("policy event=stopping signal={}", info.ssi_signo);
        return false;
      }
    }
    return true;
  }

  void handle(const epoll_event& event, bool& serving, const std::function<void()>& on_reload) {
    const int fd = event.data.fd;
    if (fd == signal_fd) {
      serving = handle_signal(on_reload);
      return;
    }
    if (std::find(listeners.begin(), listeners.end(), fd) != listeners.end()) {
      accept_from(fd);
      return;
    }
    if (auto out = by_out_fd.find(fd); out != by_out_fd.end()) {
      if (!flush(*out->second)) close_connection(*out->second);
      return;
    }
    auto found = connections.find(fd);
    if (found == connections.end()) return;
    Connection& c = *found->second;
    bool keep = true;
    if (event.events & EPOLLOUT) keep = flush(c);
    if (keep && (event.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) keep = read_from(c);
    if (!keep) close_connection(c);
  }
};

Result<std::unique_ptr<Server>> Server::create(ServerOptions options, RequestHandler& handler) {
  auto impl = std::make_unique<Impl>(std::move(options), handler);
  impl->epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  if (impl->epoll_fd < 0) return Status::error(std::string("epoll: ") + std::strerror(errno));
  for (const ListenSpec& spec : impl->options.listen) {
    if (spec.kind == ListenSpec::Kind::stdio) {
      impl->stdio_mode = true;
      continue;
    }
    auto fd = open_listener(spec, impl->options.socket_mode);
    if (!fd) return fd.status();
    impl->listeners.push_back(fd.value());
    if (Status watched = impl->watch(fd.value(), EPOLLIN); !watched) return watched;
  }
  if (impl->stdio_mode && impl->options.listen.size() != 1) {
    return Status::error("stdio (spawn mode) cannot be combined with other listeners");
  }
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Server::~Server() = default;

ServerStats Server::stats() const {
  ServerStats s = impl_->stats;
  s.open = impl_->connections.size();
  return s;
}

Status Server::run(const std::function<void()>& on_reload) {
  Impl& s = *impl_;
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  s.signal_fd = ::signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
  if (s.signal_fd < 0) return Status::error(std::string("signalfd: ") + std::strerror(errno));
  if (Status watched = s.watch(s.signal_fd, EPOLLIN); !watched) return watched;
  if (s.stdio_mode) {
    set_nonblocking(STDIN_FILENO);
    set_nonblocking(STDOUT_FILENO);
    if (Status added = s.add_connection(STDIN_FILENO, STDOUT_FILENO); !added) {
      return added.context("spawn mode needs stdin to be a socket or pipe");
    }
  }
  std::array<epoll_event, 256> events;
  bool serving = true;
  auto last_sweep = Clock::now();
  while (serving && !(s.stdio_mode && s.connections.empty())) {
    const int n = ::epoll_wait(s.epoll_fd, events.data(), static_cast<int>(events.size()), 1000);
    if (n < 0 && errno != EINTR) return Status::error(std::string("epoll_wait: ") + std::strerror(errno));
    for (int i = 0; i < n && serving; ++i) s.handle(events[static_cast<std::size_t>(i)], serving, on_reload);
    if (Clock::now() - last_sweep >= std::chrono::seconds(1)) {
      s.sweep_timeouts();
      last_sweep = Clock::now();
    }
  }
  return Status::ok();
}

}  // namespace smtpscope::policy
