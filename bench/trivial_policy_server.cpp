// trivial_policy_server: the simplest correct C++ policy server, for
// comparison only: a thread per connection, blocking reads, every request
// answered "action=DUNNO", nothing recorded.
// Usage: trivial_policy_server PORT (TCP on 127.0.0.1) | /path/to/socket
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

namespace {

int listen_on(const char* where) {
  if (where[0] == '/') {
    const int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", where);
    ::unlink(where);
    ::umask(0);  // Postfix's smtpd connects as postfix
    if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return -1;
    return ::listen(listener, 128) == 0 ? listener : -1;
  }
  const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
  const int on = 1;
  ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = htons(static_cast<uint16_t>(std::atoi(where)));
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return -1;
  return ::listen(listener, 128) == 0 ? listener : -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  const int listener = listen_on(argv[1]);
  if (listener < 0) return 1;
  for (;;) {
    const int fd = ::accept(listener, nullptr, nullptr);
    if (fd < 0) continue;
    std::thread([fd] {
      std::string buffer;
      char chunk[65536];
      for (;;) {
        const ssize_t n = ::read(fd, chunk, sizeof(chunk));
        if (n <= 0) break;
        buffer.append(chunk, static_cast<std::size_t>(n));
        for (std::size_t end; (end = buffer.find("\n\n")) != std::string::npos;) {
          buffer.erase(0, end + 2);
          static const char answer[] = "action=DUNNO\n\n";
          if (::write(fd, answer, sizeof(answer) - 1) < 0) break;
        }
      }
      ::close(fd);
    }).detach();
  }
}
