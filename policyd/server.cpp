#include "server.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
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
  // Read while the output was full, not parsed yet (at most one read).
  std::string held_input;
  Clock::time_point last_activity;
  Clock::time_point request_started;  // first byte of the partial request, if any
  Clock::time_point paused_since;     // when reading stopped for a full output
  bool close_after_flush = false;  // no more input (end of file or an error)
  bool reading = true;             // false while the unsent output is at the bound
  bool output_blocked = false;     // a write would block: EPOLLOUT wanted
  std::uint32_t in_events = 0;     // what epoll watches on in_fd now (0: not in the set)
  std::uint32_t out_events = 0;    // on out_fd, when it is another descriptor
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
  RateLimiter unread_log{std::chrono::seconds(10)};
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

  // Makes epoll watch `wanted` on fd (0: nothing, out of the set), changing
  // it only when needed (an epoll_ctl per request would cost a syscall per
  // answer). A descriptor with nothing wanted leaves the set, so a hung-up
  // one is not reported again and again while the server does not read it.
  Status set_events(int fd, std::uint32_t& current, std::uint32_t wanted) {
    if (current == wanted) return Status::ok();
    epoll_event event{};
    event.events = wanted;
    event.data.fd = fd;
    const int op = current == 0 ? EPOLL_CTL_ADD : wanted == 0 ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
    if (::epoll_ctl(epoll_fd, op, fd, &event) != 0) {
      return Status::error(std::string("epoll_ctl: ") + std::strerror(errno));
    }
    current = wanted;
    return Status::ok();
  }

  // Input is watched while the server reads the connection, output while a
  // write would block.
  Status apply_watch(Connection& c) {
    const std::uint32_t input = c.reading ? EPOLLIN | EPOLLRDHUP : 0u;
    const std::uint32_t output = c.output_blocked ? EPOLLOUT : 0u;
    if (c.out_fd == c.in_fd) return set_events(c.in_fd, c.in_events, input | output);
    if (Status in = set_events(c.in_fd, c.in_events, input); !in) return in;
    return set_events(c.out_fd, c.out_events, output);
  }

  Status add_connection(int in_fd, int out_fd) {
    auto connection = std::make_unique<Connection>(
        in_fd, out_fd, fmt::format("policy:{}:{}", ::getpid(), next_connection++),
        options.limits);
    if (Status watched = apply_watch(*connection); !watched) return watched;
    if (out_fd != in_fd) by_out_fd[out_fd] = connection.get();
    connections[in_fd] = std::move(connection);
    stats.accepted += 1;
    if (options.connections_open) options.connections_open->add(1);
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
    if (options.connections_open) options.connections_open->add(-1);
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
      // The kernel's send buffer holds unsent answers too: bounded like
      // ours, so a client that does not read meets the backpressure soon
      // (a TCP buffer would otherwise grow to megabytes by itself).
      const int send_buffer = static_cast<int>(std::min<std::size_t>(options.max_output_bytes, 1 << 30));
      (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &send_buffer, sizeof send_buffer);
      if (Status added = add_connection(fd, fd); !added) {
        spdlog::warn("policy event=accept-failed error=\"{}\"", added.message());
        ::close(fd);
      }
    }
  }

  // Writes what it can; true while the connection stays usable. The caller
  // applies the watch (pace()).
  bool flush(Connection& c) {
    while (!c.pending_output.empty()) {
      const ssize_t n = ::write(c.out_fd, c.pending_output.data(), c.pending_output.size());
      if (n > 0) {
        c.pending_output.erase(0, static_cast<std::size_t>(n));
        c.last_activity = Clock::now();
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        c.output_blocked = true;
        return true;
      }
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    c.output_blocked = false;
    return !c.close_after_flush;
  }

  bool output_full(const Connection& c) const {
    return c.pending_output.size() >= options.max_output_bytes;
  }

  // Parses and answers the requests in `input` one at a time until it is
  // used up or the output is full; the rest is held for later. False on a
  // protocol error (the requests before it are answered).
  bool serve(Connection& c, std::string_view input) {
    const bool was_mid_request = c.parser.mid_request();
    bool answered = false;
    while (!input.empty() && !output_full(c)) {
      requests.clear();
      const ParseError error = c.parser.feed_one(input, requests);
      for (Request& request : requests) {
        stats.requests += 1;
        answered = true;
        c.pending_output += "action=";
        c.pending_output += handler.answer(std::move(request), c.stream);
        c.pending_output += "\n\n";
      }
      if (error != ParseError::none) {
        report_protocol_error(c, error);
        c.close_after_flush = true;
        return false;
      }
    }
    c.held_input.assign(input);
    // A request gets request_timeout from its first byte, however it trickles.
    if (c.parser.mid_request() && (!was_mid_request || answered)) {
      c.request_started = Clock::now();
    }
    return true;
  }

  // Writes, serves the held input while the output has room, and reads the
  // connection again only when nothing is held and the output is under the
  // bound. False when the connection must close.
  bool pace(Connection& c) {
    if (!flush(c)) return false;
    while (!c.held_input.empty() && !output_full(c)) {
      const std::string input = std::move(c.held_input);
      c.held_input.clear();
      if (!serve(c, input)) {
        flush(c);
        return false;
      }
      if (!flush(c)) return false;
    }
    const bool reading = !c.close_after_flush && c.held_input.empty() && !output_full(c);
    if (c.reading && !reading) c.paused_since = Clock::now();
    c.reading = reading;
    return static_cast<bool>(apply_watch(c));
  }

  void report_protocol_error(const Connection& c, ParseError error) {
    stats.protocol_errors += 1;
    if (auto held = error_log.admit()) {
      // The context is 80 bytes at most; escaped, each may take 4 (\x00).
      spdlog::warn("policy event=bad-request stream={} reason=\"{}\" text={} suppressed={}",
                   c.stream, describe(error), log_quoted(c.parser.error_context(), 320), *held);
    }
  }

  // Reads once, answers complete requests; false when the connection must
  // close. The epoll set is level-triggered, so unread input is reported
  // again: no extra read() that would only return EAGAIN.
  bool read_from(Connection& c) {
    const ssize_t n = ::read(c.in_fd, read_buffer.data(), read_buffer.size());
    if (n == 0) {  // the client sends no more: its answers are written, then it is closed
      c.close_after_flush = true;
      return pace(c);
    }
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.last_activity = Clock::now();
    if (!serve(c, std::string_view(read_buffer.data(), static_cast<std::size_t>(n)))) {
      flush(c);
      return false;
    }
    return pace(c);
  }

  void sweep_timeouts() {
    const auto now = Clock::now();
    std::vector<Connection*> expired;
    for (auto& [fd, c] : connections) {
      if (!c->reading ? now - c->paused_since > options.request_timeout
          : c->parser.mid_request() ? now - c->request_started > options.request_timeout
                                    : now - c->last_activity > options.idle_timeout) {
        expired.push_back(c.get());
      }
    }
    for (Connection* c : expired) {
      if (!c->reading) {
        stats.unread += 1;
        if (auto held = unread_log.admit()) {
          spdlog::warn("policy event=unread stream={} reason=\"answers not read within {}s\" "
                       "unsent_bytes={} suppressed={}",
                       c->stream, options.request_timeout.count(), c->pending_output.size(), *held);
        }
      } else if (c->parser.mid_request()) {
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
      if (!pace(*out->second)) close_connection(*out->second);
      return;
    }
    auto found = connections.find(fd);
    if (found == connections.end()) return;
    Connection& c = *found->second;
    bool keep = true;
    if (event.events & EPOLLOUT) keep = pace(c);
    if (keep && (event.events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
      // While the output is full only a hang-up or an error is of interest:
      // the answers can no longer be delivered.
      keep = c.reading ? read_from(c) : (event.events & (EPOLLHUP | EPOLLERR)) == 0;
    }
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
