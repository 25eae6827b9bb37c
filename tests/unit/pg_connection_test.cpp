// pg::Connection against a real server: integration.test_postgres_connect
// starts one (tests/integration/pg_server.py) and names it here through
//   SMTPSCOPE_TEST_PG_URL            postgresql://role@127.0.0.1:PORT/db
//   SMTPSCOPE_TEST_PG_SOCKET_URL     postgresql://role@/db?host=DIR&port=PORT
//   SMTPSCOPE_TEST_PG_PASSWORD_FILE  the role's password
// Each test skips when they are unset. Error messages are printed so that
// the python test can check that no password reaches the output.
#include "pg_connection.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <iostream>

namespace smtpscope::pg {
namespace {

std::string env(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? "" : value;
}

class PgConnection : public ::testing::Test {
 protected:
  void SetUp() override {
    url_text_ = env("SMTPSCOPE_TEST_PG_URL");
    socket_url_text_ = env("SMTPSCOPE_TEST_PG_SOCKET_URL");
    if (url_text_.empty() || socket_url_text_.empty()) {
      GTEST_SKIP()
          << "SMTPSCOPE_TEST_PG_URL / _SOCKET_URL unset (integration.test_postgres_connect "
             "sets them)";
    }
    auto password = resolve_password({env("SMTPSCOPE_TEST_PG_PASSWORD_FILE"), {}, {}});
    ASSERT_TRUE(password && password.value()) << (password ? "no password" : password.message());
    password_ = *password.value();
    auto url = parse_url(url_text_);
    ASSERT_TRUE(url) << url.message();
    url_ = url.value();
  }

  std::unique_ptr<Connection> connect(const Url& url) {
    auto connection = Connection::open(url, password_);
    EXPECT_TRUE(connection) << connection.message();
    return connection ? std::move(connection).value() : nullptr;
  }

  // The failure's message, printed, and checked for both passwords.
  std::string failure(const Status& status, const std::string& wrong_password = "") {
    EXPECT_FALSE(status);
    std::cout << "error message: " << status.message() << '\n';
    EXPECT_EQ(status.message().find(password_), std::string::npos) << status.message();
    if (!wrong_password.empty()) {
      EXPECT_EQ(status.message().find(wrong_password), std::string::npos) << status.message();
    }
    return status.message();
  }

  std::string url_text_;
  std::string socket_url_text_;
  std::string password_;
  Url url_;
};

// A loopback port nothing listens on (bound, then released).
std::uint16_t closed_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    return 0;
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

TEST_F(PgConnection, RunsAQueryWithBoundParametersOverTcp) {
  auto db = connect(url_);
  ASSERT_TRUE(db);
  EXPECT_EQ(db->url(), display(url_));
  const Param params[] = {Param::text("41"), Param::text("h\xc3\xa9llo'; DROP TABLE x; --"),
                          Param::null()};
  auto rows = db->exec("SELECT $1::int + 1, $2::text, $3::text IS NULL, current_user", params);
  ASSERT_TRUE(rows) << rows.message();
  ASSERT_EQ(rows.value().size(), 1);
  ASSERT_EQ(rows.value().columns(), 4);
  EXPECT_EQ(rows.value().text(0, 0), "42");
  EXPECT_EQ(rows.value().text(0, 1), "h\xc3\xa9llo'; DROP TABLE x; --");
  EXPECT_EQ(rows.value().text(0, 2), "t");
  EXPECT_EQ(rows.value().text(0, 3), url_.user);
  EXPECT_FALSE(rows.value().is_null(0, 0));
}

TEST_F(PgConnection, BytesKeepEveryByteAndTextRefusesNul) {
  auto db = connect(url_);
  ASSERT_TRUE(db);
  const std::string raw("\0\xff\n\x80 end", 8);
  const Param bytes[] = {Param::bytes(raw), Param::null()};
  auto rows = db->exec(
      "SELECT $1::bytea = '\\x00ff0a8020656e64'::bytea, octet_length($1), "
      "$2::bytea IS NULL",
      bytes);
  ASSERT_TRUE(rows) << rows.message();
  EXPECT_EQ(rows.value().text(0, 0), "t");
  EXPECT_EQ(rows.value().text(0, 1), "8");
  EXPECT_EQ(rows.value().text(0, 2), "t");

  const Param text[] = {Param::text("ok"), Param::text(raw)};
  std::string message = failure(db->exec("SELECT $1::text, $2::text", text).status());
  EXPECT_NE(message.find("parameter $2 is text with a NUL byte"), std::string::npos) << message;
  EXPECT_NE(message.find(display(url_)), std::string::npos) << message;
}

TEST_F(PgConnection, ConnectsOverTheUnixSocket) {
  auto url = parse_url(socket_url_text_);
  ASSERT_TRUE(url) << url.message();
  ASSERT_EQ(url.value().host.front(), '/');
  auto db = connect(url.value());
  ASSERT_TRUE(db);
  auto rows = db->exec("SELECT current_user, inet_server_addr() IS NULL");
  ASSERT_TRUE(rows) << rows.message();
  EXPECT_EQ(rows.value().text(0, 0), url_.user);
  EXPECT_EQ(rows.value().text(0, 1), "t");  // no address: a unix socket
}

TEST_F(PgConnection, InsertsAndCopiesRows) {
  auto db = connect(url_);
  ASSERT_TRUE(db);
  ASSERT_TRUE(db->exec("CREATE TEMP TABLE events (id bigint, stage text, raw bytea)"));
  const Param one[] = {Param::text("1"), Param::text("connect"), Param::bytes("a\0b")};
  auto inserted = db->exec("INSERT INTO events VALUES ($1, $2, $3)", one);
  ASSERT_TRUE(inserted) << inserted.message();
  EXPECT_EQ(inserted.value().affected(), 1);

  auto copied = db->copy_in("COPY events (id, stage, raw) FROM STDIN",
                            "2\thelo\t\\\\x00ff\n3\tmail\t\\N\n4\trcpt\t\\\\x41\n");
  ASSERT_TRUE(copied) << copied.message();
  EXPECT_EQ(copied.value(), 3);
  auto rows = db->exec(
      "SELECT count(*), sum(id), count(raw), string_agg(stage, ',' ORDER BY id) "
      "FROM events");
  ASSERT_TRUE(rows) << rows.message();
  EXPECT_EQ(rows.value().text(0, 0), "4");
  EXPECT_EQ(rows.value().text(0, 1), "10");
  EXPECT_EQ(rows.value().text(0, 2), "3");
  EXPECT_EQ(rows.value().text(0, 3), "connect,helo,mail,rcpt");

  // A bad COPY fails with the server's message and leaves the connection usable.
  std::string message =
      failure(db->copy_in("COPY events (id) FROM STDIN", "not-a-number\n").status());
  EXPECT_NE(message.find("COPY failed"), std::string::npos) << message;
  EXPECT_NE(message.find("SQLSTATE 22P02"), std::string::npos) << message;
  EXPECT_TRUE(db->exec("SELECT 1"));
}

TEST_F(PgConnection, AQueryErrorNamesTheUrlAndSqlstate) {
  auto db = connect(url_);
  ASSERT_TRUE(db);
  std::string message = failure(db->exec("SELEC 1").status());
  EXPECT_NE(message.find(display(url_) + ": query failed: ERROR:  syntax error"), std::string::npos)
      << message;
  EXPECT_NE(message.find("(SQLSTATE 42601)"), std::string::npos) << message;
  auto after = db->exec("SELECT 2");  // the connection still works
  ASSERT_TRUE(after) << after.message();
  EXPECT_EQ(after.value().text(0, 0), "2");
}

TEST_F(PgConnection, AWrongPasswordIsAClearErrorWithoutThePassword) {
  const std::string wrong = "wrong-" + password_.substr(0, 4) + "-pw";
  auto connection = Connection::open(url_, wrong);
  std::string message = failure(connection.status(), wrong);
  EXPECT_NE(message.find("connect to " + display(url_) + ": "), std::string::npos) << message;
  EXPECT_NE(message.find("password authentication failed for user \"" + url_.user + "\""),
            std::string::npos)
      << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;

  auto none = Connection::open(url_, std::nullopt);  // no password at all
  message = failure(none.status());
  EXPECT_NE(message.find("connect to " + display(url_) + ": "), std::string::npos) << message;
}

TEST_F(PgConnection, AnUnreachableServerIsAClearErrorWithoutThePassword) {
  Url url = url_;
  url.port = closed_port();
  ASSERT_NE(url.port, 0);
  std::string message = failure(Connection::open(url, password_).status());
  EXPECT_NE(message.find("connect to " + display(url) + ": "), std::string::npos) << message;
  EXPECT_NE(message.find("Connection refused"), std::string::npos) << message;

  auto socket = parse_url("postgresql://" + url_.user + "@/" + url_.database +
                          "?host=/nonexistent-smtpscope-socket-dir");
  ASSERT_TRUE(socket) << socket.message();
  message = failure(Connection::open(socket.value(), password_).status());
  EXPECT_NE(message.find("connect to " + display(socket.value()) + ": "), std::string::npos)
      << message;
  EXPECT_NE(message.find("No such file or directory"), std::string::npos) << message;
}

}  // namespace
}  // namespace smtpscope::pg
