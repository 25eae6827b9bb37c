// The floor of the end-to-end benchmark without libmilter (bench/e2e_bench.py,
// configuration r): a milter written straight on the milter protocol, one
// thread, one epoll loop, no thread per connection. It asks Postfix for no
// stage at all (SMFIP_NO*), answers the negotiation and end-of-message with
// CONTINUE, and ignores macros, abort and quit. If Postfix with this milter
// is still far below Postfix without one, the cost is Postfix's own, not
// libmilter's. A benchmark tool: it trusts its peer (Postfix on loopback).
// Usage: raw_deaf_milter /path/to/socket
#include <libmilter/mfdef.h>
#include <arpa/inet.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>

namespace {

constexpr std::uint32_t no_stage = SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT |
                                   SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOUNKNOWN |
                                   SMFIP_NODATA;

std::string packet(char command, const std::string& data = "") {
  const std::uint32_t length = htonl(static_cast<std::uint32_t>(data.size() + 1));
  std::string out(reinterpret_cast<const char*>(&length), 4);
  out += command;
  out += data;
  return out;
}

std::string word(std::uint32_t value) {
  const std::uint32_t network = htonl(value);
  return std::string(reinterpret_cast<const char*>(&network), 4);
}

std::uint32_t word_at(const std::string& data, std::size_t offset) {
  std::uint32_t network = 0;
  std::memcpy(&network, data.data() + offset, 4);
  return ntohl(network);
}

// The reply to one command, empty when the command takes none.
std::string reply_to(char command, const std::string& data) {
  switch (command) {
    case SMFIC_OPTNEG: {
      const std::uint32_t offered = data.size() >= 12 ? word_at(data, 8) : 0;
      return packet(SMFIC_OPTNEG, word(SMFI_PROT_VERSION) + word(0) + word(offered & no_stage));
    }
    case SMFIC_MACRO:
    case SMFIC_ABORT:
    case SMFIC_QUIT:
    case SMFIC_QUIT_NC:
      return "";
    default:  // end of message, and any stage sent although not asked for
      return packet(SMFIR_CONTINUE);
  }
}

// Answers every complete packet in `input`; false when the peer quit.
bool serve(int fd, std::string& input) {
  std::string output;
  std::size_t used = 0;
  bool open = true;
  while (input.size() - used >= 4) {
    const std::uint32_t length = word_at(input, used);
    if (length == 0 || input.size() - used - 4 < length) break;
    const char command = input[used + 4];
    output += reply_to(command, input.substr(used + 5, length - 1));
    if (command == SMFIC_QUIT) open = false;
    used += 4 + length;
  }
  input.erase(0, used);
  if (!output.empty() && ::write(fd, output.data(), output.size()) < 0) return false;
  return open;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: raw_deaf_milter /path/to/socket\n");
    return 2;
  }
  const int listener = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof address.sun_path, "%s", argv[1]);
  ::unlink(argv[1]);
  ::umask(0);  // Postfix's smtpd and cleanup connect as postfix
  if (::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::listen(listener, 1024) != 0) {
    std::perror("raw_deaf_milter: listen");
    return 1;
  }
  const int epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event watch{};
  watch.events = EPOLLIN;
  watch.data.fd = listener;
  ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &watch);
  std::unordered_map<int, std::string> inputs;
  epoll_event events[64];
  char buffer[65536];
  for (;;) {
    const int n = ::epoll_wait(epoll_fd, events, 64, -1);
    for (int i = 0; i < n; ++i) {
      const int fd = events[i].data.fd;
      if (fd == listener) {
        const int client = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) continue;
        watch.data.fd = client;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, client, &watch);
        inputs[client].clear();
        continue;
      }
      const ssize_t got = ::read(fd, buffer, sizeof buffer);
      std::string& input = inputs[fd];
      if (got > 0) input.append(buffer, static_cast<std::size_t>(got));
      if (got <= 0 || !serve(fd, input)) {
        ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
        ::close(fd);
        inputs.erase(fd);
      }
    }
  }
}
