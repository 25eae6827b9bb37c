// policy_load: drives a Postfix policy server the way smtpd does (each
// connection sends one request, waits for the answer, sends the next) and
// reports requests per second. Requests are ~700-byte RCPT requests as
// Postfix 3.7 sends them (bench/policy_request_text.h: a session of one
// transaction with 5 recipients). Usage:
//   policy_load (--tcp HOST:PORT | --unix PATH) --connections N --seconds S
// Prints one line: connections=N requests=R seconds=S rps=X
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "policy_request_text.h"

namespace {

struct Target {
  std::string unix_path;
  std::string host;
  int port = 0;
};

int connect_to(const Target& t) {
  if (!t.unix_path.empty()) {
    const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::strncpy(a.sun_path, t.unix_path.c_str(), sizeof(a.sun_path) - 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return -1;
    return fd;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  const int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(t.port));
  ::inet_pton(AF_INET, t.host.c_str(), &a.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) return -1;
  return fd;
}


bool exchange(int fd, const std::string& req, std::string& buffer) {
  for (std::size_t sent = 0; sent < req.size();) {
    const ssize_t n = ::write(fd, req.data() + sent, req.size() - sent);
    if (n <= 0) return false;
    sent += static_cast<std::size_t>(n);
  }
  for (;;) {
    const std::size_t end = buffer.find("\n\n");
    if (end != std::string::npos) {
      buffer.erase(0, end + 2);
      return true;
    }
    char chunk[4096];
    const ssize_t n = ::read(fd, chunk, sizeof(chunk));
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
}

}  // namespace

int main(int argc, char** argv) {
  Target target;
  int connections = 1;
  double seconds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--unix") {
      target.unix_path = value;
    } else if (flag == "--tcp") {
      target.host = value.substr(0, value.rfind(':'));
      target.port = std::atoi(value.substr(value.rfind(':') + 1).c_str());
    } else if (flag == "--connections") {
      connections = std::atoi(value.c_str());
    } else if (flag == "--seconds") {
      seconds = std::atof(value.c_str());
    }
  }
  std::atomic<long> total{0};
  std::atomic<bool> failed{false};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  const auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < connections; ++c) {
    threads.emplace_back([&, c] {
      const int fd = connect_to(target);
      if (fd < 0) {
        failed = true;
        return;
      }
      std::string buffer;
      long n = 0;
      while (std::chrono::steady_clock::now() < deadline) {
        if (!exchange(fd, policy_request_text(c, n), buffer)) {
          failed = true;
          break;
        }
        ++n;
      }
      total += n;
      ::close(fd);
    });
  }
  for (auto& t : threads) t.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("connections=%d requests=%ld seconds=%.2f rps=%.0f%s\n", connections, total.load(),
              elapsed, static_cast<double>(total.load()) / elapsed, failed ? " FAILED" : "");
  return failed ? 1 : 0;
}
