#include "listener.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

namespace smtpscope::policy {
namespace {

Status errno_error(const std::string& what) {
  return Status::error(what + ": " + std::strerror(errno));
}

Result<int> listen_unix(const ListenSpec& spec, mode_t mode) {
  sockaddr_un address{};
  if (spec.path.size() >= sizeof(address.sun_path)) {
    return Status::error("socket path too long: " + spec.path);
  }
  const auto parent = std::filesystem::path(spec.path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent)) {
    return Status::error("socket directory " + parent.string() + " does not exist");
  }
  struct stat existing{};
  if (::lstat(spec.path.c_str(), &existing) == 0) {
    if (!S_ISSOCK(existing.st_mode)) {
      return Status::error(spec.path + " exists and is not a socket; not replacing it");
    }
    ::unlink(spec.path.c_str());
  }
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return errno_error("socket");
  address.sun_family = AF_UNIX;
  std::memcpy(address.sun_path, spec.path.c_str(), spec.path.size() + 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::chmod(spec.path.c_str(), mode) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    Status failed = errno_error("listen on " + spec.text);
    ::close(fd);
    return failed;
  }
  return fd;
}

Result<int> listen_tcp(const ListenSpec& spec) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(spec.port);
  if (int rc = ::getaddrinfo(spec.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return Status::error(spec.text + ": host must be a numeric address (" + gai_strerror(rc) + ")");
  }
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int on = 1;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
      ::bind(fd, found->ai_addr, found->ai_addrlen) != 0 || ::listen(fd, SOMAXCONN) != 0) {
    Status failed = errno_error("listen on " + spec.text);
    if (fd >= 0) ::close(fd);
    ::freeaddrinfo(found);
    return failed;
  }
  ::freeaddrinfo(found);
  return fd;
}

}  // namespace

Result<ListenSpec> parse_listen_spec(const std::string& text) {
  ListenSpec spec;
  spec.text = text;
  if (text == "stdio") {
    spec.kind = ListenSpec::Kind::stdio;
    return spec;
  }
  for (std::string_view prefix : {"unix:", "local:"}) {
    if (text.starts_with(prefix) && text.size() > prefix.size() && text[prefix.size()] == '/') {
      spec.kind = ListenSpec::Kind::unix_socket;
      spec.path = text.substr(prefix.size());
      return spec;
    }
  }
  if (text.starts_with("inet:")) {
    const std::string rest = text.substr(5);
    const std::size_t colon = rest.rfind(':');
    const std::string port = colon == std::string::npos ? "" : rest.substr(colon + 1);
    int number = 0;
    const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), number);
    if (colon != std::string::npos && colon > 0 && ec == std::errc() &&
        end == port.data() + port.size() && number > 0 && number < 65536) {
      spec.kind = ListenSpec::Kind::tcp;
      spec.host = rest.substr(0, colon);
      if (spec.host.size() > 2 && spec.host.front() == '[' && spec.host.back() == ']') {
        spec.host = spec.host.substr(1, spec.host.size() - 2);
      }
      spec.port = number;
      return spec;
    }
  }
  return Status::error("\"" + text + "\" is not unix:/path, inet:HOST:PORT or stdio");
}

Result<int> open_listener(const ListenSpec& spec, mode_t unix_mode) {
  switch (spec.kind) {
    case ListenSpec::Kind::unix_socket: return listen_unix(spec, unix_mode);
    case ListenSpec::Kind::tcp: return listen_tcp(spec);
    case ListenSpec::Kind::stdio: return Status::error("stdio is not a listening socket");
  }
  return Status::error("unknown listener kind");
}

}  // namespace smtpscope::policy
