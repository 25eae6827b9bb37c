#include "metrics_http.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace smtpscope {
namespace {

using namespace std::chrono_literals;

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  return fd;
}

// Sends `request` and reads the whole answer (the server closes after it).
std::string exchange(std::uint16_t port, const std::string& request) {
  const int fd = connect_to(port);
  (void)!::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer;
  char buffer[4096];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) break;
    const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
    if (got <= 0) break;
    answer.append(buffer, static_cast<std::size_t>(got));
  }
  ::close(fd);
  return answer;
}

std::unique_ptr<MetricsHttpServer> started(MetricsHttpOptions options = {}) {
  auto server = MetricsHttpServer::bind("127.0.0.1:0", [] { return std::string("smtpscope_up 1\n"); },
                                        options);
  EXPECT_TRUE(server) << server.message();
  server.value()->start();
  return std::move(server).value();
}

TEST(MetricsHttp, ListenSpecsDefaultToLoopback) {
  auto port_only = parse_metrics_listen("9187");
  ASSERT_TRUE(port_only);
  EXPECT_EQ(port_only.value().host, "127.0.0.1");
  EXPECT_EQ(port_only.value().port, 9187);
  auto colon_port = parse_metrics_listen(":9187");
  ASSERT_TRUE(colon_port);
  EXPECT_EQ(colon_port.value().host, "127.0.0.1");
  auto v6 = parse_metrics_listen("[::1]:9187");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6.value().host, "::1");
  auto any = parse_metrics_listen("0.0.0.0:9187");
  ASSERT_TRUE(any);
  EXPECT_EQ(any.value().host, "0.0.0.0");
  EXPECT_FALSE(parse_metrics_listen("::1:9187"));
  EXPECT_FALSE(parse_metrics_listen("127.0.0.1:"));
  EXPECT_FALSE(parse_metrics_listen("127.0.0.1:65536"));
  EXPECT_FALSE(parse_metrics_listen("host:port"));
}

TEST(MetricsHttp, GetMetricsAnswersTheExposition) {
  auto server = started();
  const std::string answer =
      exchange(server->port(), "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n");
  EXPECT_TRUE(answer.starts_with("HTTP/1.1 200 OK\r\n")) << answer;
  EXPECT_NE(answer.find("Content-Type: text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(answer.find("Content-Length: 15\r\n"), std::string::npos) << answer;
  EXPECT_TRUE(answer.ends_with("\r\n\r\nsmtpscope_up 1\n")) << answer;
  // A query string is allowed (Prometheus may add one); the server serves again.
  EXPECT_TRUE(exchange(server->port(), "GET /metrics?x=1 HTTP/1.0\r\n\r\n").starts_with("HTTP/1.1 200"));
}

TEST(MetricsHttp, OtherPathsMethodsAndGarbageAreRefused) {
  auto server = started();
  EXPECT_TRUE(exchange(server->port(), "GET / HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 404"));
  const std::string post = exchange(server->port(), "POST /metrics HTTP/1.1\r\n\r\n");
  EXPECT_TRUE(post.starts_with("HTTP/1.1 405")) << post;
  EXPECT_NE(post.find("Allow: GET"), std::string::npos);
  EXPECT_TRUE(exchange(server->port(), "hello\r\n\r\n").starts_with("HTTP/1.1 400"));
}

// The request head is bounded: at the bound it is still read, beyond it 431.
TEST(MetricsHttp, RequestHeadIsBounded) {
  MetricsHttpOptions options;
  options.max_request_bytes = 256;
  auto server = started(options);
  const std::string start = "GET /metrics HTTP/1.1\r\nX: ";
  const std::string end = "\r\n\r\n";
  const std::string at_limit = start + std::string(256 - start.size() - end.size(), 'a') + end;
  ASSERT_EQ(at_limit.size(), 256u);
  EXPECT_TRUE(exchange(server->port(), at_limit).starts_with("HTTP/1.1 200")) << "at the limit";
  const std::string over = start + std::string(257 - start.size() - end.size(), 'a') + end;
  EXPECT_TRUE(exchange(server->port(), over).starts_with("HTTP/1.1 431")) << "one over";
  const std::string huge = start + std::string(100000, 'a');
  EXPECT_TRUE(exchange(server->port(), huge).starts_with("HTTP/1.1 431"));
}

// A scraper that connects and says nothing is dropped after io_timeout;
// the next one is served, and stop() does not wait for the silent one.
TEST(MetricsHttp, ASilentClientIsDroppedAfterTheTimeout) {
  MetricsHttpOptions options;
  options.io_timeout = 300ms;
  auto server = started(options);
  const int silent = connect_to(server->port());
  const auto begun = std::chrono::steady_clock::now();
  EXPECT_TRUE(exchange(server->port(), "GET /metrics HTTP/1.1\r\n\r\n").starts_with("HTTP/1.1 200"));
  EXPECT_LT(std::chrono::steady_clock::now() - begun, 3s);
  const int silent_again = connect_to(server->port());
  const auto stopping = std::chrono::steady_clock::now();
  server->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - stopping, 1s);
  ::close(silent);
  ::close(silent_again);
}

TEST(MetricsHttp, APortInUseIsAnError) {
  auto first = MetricsHttpServer::bind("127.0.0.1:0", [] { return std::string(); });
  ASSERT_TRUE(first);
  auto second =
      MetricsHttpServer::bind("127.0.0.1:" + std::to_string(first.value()->port()),
                              [] { return std::string(); });
  ASSERT_FALSE(second);
  EXPECT_NE(second.message().find("127.0.0.1:"), std::string::npos) << second.message();
}

}  // namespace
}  // namespace smtpscope
