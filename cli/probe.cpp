#include "probe.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <utility>
#include <vector>

#include "text_escape.h"

namespace smtpscope::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct Reply {
  int code = 0;
  std::string text;
  double after_s = 0;  // since the group was sent
};

// A blocking SMTP connection with a deadline per read.
class Connection {
 public:
  ~Connection() {
    if (fd_ >= 0) ::close(fd_);
  }

  std::optional<std::string> open(const std::string& host, const std::string& port,
                                  const std::string& source) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
      return fmt::format("cannot resolve {}: {}", host, gai_strerror(rc));
    }
    fd_ = ::socket(found->ai_family, SOCK_STREAM, 0);
    if (!source.empty()) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      if (::inet_pton(AF_INET, source.c_str(), &local.sin_addr) != 1 ||
          ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0) {
        ::freeaddrinfo(found);
        return "cannot bind the source address " + source;
      }
    }
    const int rc = ::connect(fd_, found->ai_addr, found->ai_addrlen);
    ::freeaddrinfo(found);
    if (rc != 0) return fmt::format("cannot connect to {}:{}: {}", host, port, std::strerror(errno));
    const int on = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
    return std::nullopt;
  }

  bool send(const std::string& data) {
    return ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }

  // One (possibly multi-line) reply, or nullopt on timeout or close.
  std::optional<Reply> reply(double timeout_s, const Clock::time_point& since) {
    Reply r;
    for (;;) {
      auto line = read_line(timeout_s);
      if (!line) return std::nullopt;
      if (line->size() < 3) return std::nullopt;
      r.code = std::atoi(line->substr(0, 3).c_str());
      r.text += (r.text.empty() ? "" : "\n") + line->substr(std::min<std::size_t>(4, line->size()));
      if (line->size() < 4 || (*line)[3] != '-') break;
    }
    r.after_s = std::chrono::duration<double>(Clock::now() - since).count();
    return r;
  }

  bool closed = false;

 private:
  std::optional<std::string> read_line(double timeout_s) {
    const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      const std::size_t end = buffer_.find("\r\n");
      if (end != std::string::npos) {
        std::string line = buffer_.substr(0, end);
        buffer_.erase(0, end + 2);
        return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return std::nullopt;
      char chunk[4096];
      const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n <= 0) {
        closed = true;
        return std::nullopt;
      }
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

  int fd_ = -1;
  std::string buffer_;
};

struct Step {
  std::string sent;
  std::optional<Reply> reply;
};

struct Check {
  std::string name;
  bool pipelined = false;
  std::vector<Step> steps;
  bool passed = false;
  std::string verdict;
};

bool ok(const std::optional<Reply>& r, int low, int high) {
  return r && r->code >= low && r->code <= high;
}

// Sends `commands` (pipelined in one segment, or one by one) and collects a reply each.
void exchange(Connection& c, Check& check, const std::vector<std::string>& commands,
              double timeout_s) {
  const auto since = Clock::now();
  if (check.pipelined) {
    std::string group;
    for (const auto& cmd : commands) group += cmd + "\r\n";
    c.send(group);
    for (const auto& cmd : commands) check.steps.push_back({cmd, c.reply(timeout_s, since)});
  } else {
    for (const auto& cmd : commands) {
      c.send(cmd + "\r\n");
      check.steps.push_back({cmd, c.reply(timeout_s, since)});
      if (!check.steps.back().reply) break;
    }
  }
}

void judge_envelope(Check& check, const Connection& c) {
  const auto& s = check.steps;
  auto answered = [&](std::size_t i) { return i < s.size() && s[i].reply.has_value(); };
  const int count = static_cast<int>(std::count_if(s.begin(), s.end(),
                                                   [](const Step& st) { return st.reply.has_value(); }));
  if (answered(0) && answered(1) && answered(2) && answered(3) && ok(s[0].reply, 200, 299) &&
      (ok(s[1].reply, 200, 299) || ok(s[1].reply, 500, 599) || ok(s[1].reply, 400, 499)) &&
      ok(s[2].reply, 200, 299) && s[3].reply->code == 221) {
    check.passed = true;
    check.verdict = check.pipelined
                        ? "conformant: four replies, in order, to the pipelined MAIL/RCPT/RSET/QUIT"
                        : "answers MAIL/RCPT/RSET/QUIT one at a time (no PIPELINING offered)";
    return;
  }
  if (answered(0) && s[0].reply->code == 221 && count == 1) {
    check.verdict = "answered only the QUIT of the pipelined group (a reply to MAIL was expected): "
                    "address verification probes from Postfix will fail with \"lost connection "
                    "... while sending RCPT TO\"; a broken server or middlebox. Workaround on the "
                    "sending side: smtp_discard_ehlo_keyword_address_maps with `pipelining` for "
                    "this destination";
  } else if (count < 4 && c.closed) {
    check.verdict = fmt::format("dropped the connection after {} of 4 replies", count);
  } else if (count < 4) {
    check.verdict = fmt::format("gave {} of 4 replies before the timeout", count);
  } else {
    check.verdict = "replies out of order or unexpected codes";
  }
}

std::string render_text(const std::string& target, const std::string& greeting, bool pipelining,
                        const std::vector<Check>& checks) {
  std::string out = fmt::format("probe {}\n  greeting: {}\n  PIPELINING: {}\n", printable(target),
                                printable(greeting, 120), pipelining ? "offered" : "not offered");
  for (const auto& check : checks) {
    out += fmt::format("\n{} ({}):\n", check.name, check.pipelined ? "pipelined, one segment"
                                                                   : "one command at a time");
    for (const auto& step : check.steps) {
      out += step.reply ? fmt::format("  C: {:<40} S: {} {}   (+{:.3f}s)\n", printable(step.sent, 40),
                                      step.reply->code, printable(step.reply->text, 80),
                                      step.reply->after_s)
                        : fmt::format("  C: {:<40} S: (no reply)\n", printable(step.sent, 40));
    }
    out += fmt::format("  verdict: {}{}\n", check.passed ? "PASS " : "FAIL ", check.verdict);
  }
  return out;
}

std::string render_json(const std::string& target, const std::string& greeting, bool pipelining,
                        const std::vector<Check>& checks) {
  using nlohmann::json;
  json list = json::array();
  for (const auto& check : checks) {
    json steps = json::array();
    for (const auto& step : check.steps) {
      steps.push_back({{"sent", step.sent},
                       {"code", step.reply ? json(step.reply->code) : json()},
                       {"text", step.reply ? json(step.reply->text) : json()},
                       {"after_s", step.reply ? json(step.reply->after_s) : json()}});
    }
    list.push_back({{"check", check.name}, {"pipelined", check.pipelined}, {"passed", check.passed},
                    {"verdict", check.verdict}, {"steps", steps}});
  }
  return json{{"target", target}, {"greeting", greeting}, {"pipelining", pipelining},
              {"checks", list}}
             .dump(2, ' ', false, json::error_handler_t::replace) +
         "\n";
}

// HOST, HOST:PORT, an IPv6 address, or [ADDRESS] / [ADDRESS]:PORT.
std::pair<std::string, std::string> host_and_port(const std::string& target) {
  if (target.size() > 1 && target.front() == '[') {
    const std::size_t close = target.find(']');
    if (close != std::string::npos) {
      const std::string rest = target.substr(close + 1);
      return {target.substr(1, close - 1),
              rest.size() > 1 && rest.front() == ':' ? rest.substr(1) : "25"};
    }
  }
  const std::size_t colon = target.rfind(':');
  if (colon != std::string::npos && target.find(':') == colon) {
    return {target.substr(0, colon), target.substr(colon + 1)};
  }
  return {target, "25"};
}

}  // namespace

std::string default_recipient(const std::string& host) {
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) return "postmaster@[" + host + "]";
  if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) return "postmaster@[IPv6:" + host + "]";
  return "postmaster@" + host;
}

int run_probe(const ProbeOptions& options) {
  const auto endpoint = host_and_port(options.target);
  const std::string& host = endpoint.first;
  const std::string& port = endpoint.second;
  auto session = [&](Connection& c, std::string& greeting, bool& pipelining) -> std::optional<std::string> {
    if (auto failed = c.open(host, port, options.source)) return failed;
    auto banner = c.reply(options.timeout_s, Clock::now());
    if (!banner || banner->code != 220) return "no 220 greeting";
    greeting = banner->text;
    c.send("EHLO " + options.helo + "\r\n");
    auto ehlo = c.reply(options.timeout_s, Clock::now());
    if (!ehlo || ehlo->code != 250) return "EHLO refused";
    pipelining = ehlo->text.find("PIPELINING") != std::string::npos;
    return std::nullopt;
  };
  std::vector<Check> checks;
  std::string greeting;
  bool pipelining = false;
  {
    Connection c;
    if (auto failed = session(c, greeting, pipelining)) {
      std::cerr << "smtpscope: probe " << printable(options.target) << ": " << *failed << '\n';
      return 1;
    }
    const std::string rcpt =
        options.recipient.empty() ? default_recipient(host) : options.recipient;
    Check envelope{"envelope group: MAIL, RCPT, RSET, QUIT", pipelining, {}, false, ""};
    exchange(c, envelope, {"MAIL FROM:<>", "RCPT TO:<" + rcpt + ">", "RSET", "QUIT"},
             options.timeout_s);
    judge_envelope(envelope, c);
    checks.push_back(std::move(envelope));
  }
  if (!options.data_sink.empty() && pipelining) {
    Connection c;
    std::string ignored;
    bool offered = false;
    if (!session(c, ignored, offered)) {
      Check data{"DATA group and DOT+QUIT (test message to " + options.data_sink + ")", true, {},
                 false, ""};
      exchange(c, data, {"MAIL FROM:<>", "RCPT TO:<" + options.data_sink + ">", "DATA"},
               options.timeout_s);
      const bool group_ok = data.steps.size() == 3 && ok(data.steps[0].reply, 200, 299) &&
                            ok(data.steps[1].reply, 200, 299) && data.steps[2].reply &&
                            data.steps[2].reply->code == 354;
      if (group_ok) {
        const auto since = Clock::now();
        c.send("Subject: smtpscope pipelining probe\r\n\r\ntest\r\n.\r\nQUIT\r\n");
        data.steps.push_back({"<message> .", c.reply(options.timeout_s, since)});
        data.steps.push_back({"QUIT", c.reply(options.timeout_s, since)});
      }
      data.passed = group_ok && data.steps.size() == 5 && ok(data.steps[3].reply, 200, 299) &&
                    data.steps[4].reply && data.steps[4].reply->code == 221;
      data.verdict = data.passed ? "conformant: MAIL/RCPT/DATA group answered 250/250/354, the "
                                   "dot and QUIT 250/221"
                                 : "the DATA group or the dot+QUIT was not answered as expected";
      checks.push_back(std::move(data));
    }
  }
  std::cout << (options.format == "json" ? render_json(options.target, greeting, pipelining, checks)
                                         : render_text(options.target, greeting, pipelining, checks));
  const bool all_passed = std::all_of(checks.begin(), checks.end(),
                                      [](const Check& c) { return c.passed; });
  return all_passed ? 0 : 1;
}

}  // namespace smtpscope::cli
