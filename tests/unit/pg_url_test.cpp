#include "pg_url.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>

#include "test_support.h"

namespace smtpscope::pg {
namespace {

Url parsed(std::string_view text) {
  auto url = parse_url(text);
  EXPECT_TRUE(url) << text << ": " << (url ? "" : url.message());
  return url ? url.value() : Url{};
}

std::string refusal(std::string_view text) {
  auto url = parse_url(text);
  EXPECT_FALSE(url) << text << " was accepted";
  return url ? "" : url.message();
}

TEST(PgUrl, TellsPostgresqlFromSqlite) {
  EXPECT_TRUE(is_pg_url("postgresql://db.example/smtpscope"));
  EXPECT_TRUE(is_pg_url("postgres://db.example/smtpscope"));
  EXPECT_FALSE(is_pg_url("/var/lib/smtpscope/smtpscope.db"));
  EXPECT_FALSE(is_pg_url("postgresql:/x"));
  EXPECT_FALSE(is_pg_url("mysql://db/x"));
}

TEST(PgUrl, ParsesUserHostPortAndDatabase) {
  Url url = parsed("postgresql://smtpscope@db.example:5433/mail");
  EXPECT_EQ(url.user, "smtpscope");
  EXPECT_EQ(url.host, "db.example");
  EXPECT_EQ(url.port, 5433);
  EXPECT_EQ(url.database, "mail");
  EXPECT_TRUE(url.options.empty());
  EXPECT_EQ(display(url), "postgresql://smtpscope@db.example:5433/mail");
}

TEST(PgUrl, EverythingIsOptional) {
  Url url = parsed("postgres://");
  EXPECT_EQ(url.user, "");
  EXPECT_EQ(url.host, "");
  EXPECT_FALSE(url.port);
  EXPECT_EQ(url.database, "");
  EXPECT_EQ(display(url), "postgresql://");
  EXPECT_EQ(parsed("postgresql://db.example").host, "db.example");
}

TEST(PgUrl, ParsesIpv6InBrackets) {
  Url url = parsed("postgresql://u@[::1]:6543/db");
  EXPECT_EQ(url.host, "::1");
  EXPECT_EQ(url.port, 6543);
  EXPECT_EQ(display(url), "postgresql://u@[::1]:6543/db");
  EXPECT_NE(refusal("postgresql://u@[::1/db").find("unclosed ["), std::string::npos);
}

TEST(PgUrl, ParsesTheUnixSocketForm) {
  Url url = parsed("postgresql://smtpscope@/mail?host=/run/postgresql&port=5432");
  EXPECT_EQ(url.host, "/run/postgresql");
  EXPECT_EQ(url.port, 5432);
  EXPECT_EQ(url.database, "mail");
  EXPECT_EQ(display(url), "postgresql://smtpscope@/mail?host=/run/postgresql&port=5432");
  EXPECT_EQ(parsed("postgresql://u@/db?host=%2Ftmp%2Fpg%20dir").host, "/tmp/pg dir");
}

TEST(PgUrl, DecodesPercentEscapes) {
  Url url = parsed("postgresql://mail%40site@db/smtp%2Dscope");
  EXPECT_EQ(url.user, "mail@site");
  EXPECT_EQ(url.database, "smtp-scope");
  EXPECT_NE(refusal("postgresql://u@db/x%4").find("bad percent escape"), std::string::npos);
  EXPECT_NE(refusal("postgresql://u@db/x%zz").find("bad percent escape"), std::string::npos);
  EXPECT_NE(refusal("postgresql://u%00x@db/x").find("bad percent escape"), std::string::npos);
}

TEST(PgUrl, KeepsKnownOptionsInOrder) {
  Url url =
      parsed("postgresql://u@db/x?sslmode=verify-full&connect_timeout=3&application_name=mx1");
  ASSERT_EQ(url.options.size(), 3u);
  EXPECT_EQ(url.options[0], (std::pair<std::string, std::string>{"sslmode", "verify-full"}));
  EXPECT_EQ(url.options[1], (std::pair<std::string, std::string>{"connect_timeout", "3"}));
  EXPECT_EQ(url.options[2], (std::pair<std::string, std::string>{"application_name", "mx1"}));
  EXPECT_EQ(display(url),
            "postgresql://u@db/x?sslmode=verify-full&connect_timeout=3&application_name=mx1");
}

TEST(PgUrl, RefusesUnknownOptionsAndMalformedQueries) {
  std::string message = refusal("postgresql://u@db/x?options=-csearch_path%3Devil");
  EXPECT_NE(message.find("unknown query key \"options\""), std::string::npos) << message;
  EXPECT_NE(message.find("accepted: host, port, sslmode"), std::string::npos) << message;
  EXPECT_NE(refusal("postgresql://u@db/x?sslmode").find("has no '='"), std::string::npos);
}

TEST(PgUrl, PortIsANumberFrom1To65535) {
  EXPECT_EQ(parsed("postgresql://db:1/x").port, 1);
  EXPECT_EQ(parsed("postgresql://db:65535/x").port, 65535);
  for (const char* bad : {"postgresql://db:0/x", "postgresql://db:65536/x", "postgresql://db:/x",
                          "postgresql://db:54a/x", "postgresql://db/x?port=-1"}) {
    EXPECT_NE(refusal(bad).find("is not a number from 1 to 65535"), std::string::npos) << bad;
  }
}

TEST(PgUrl, OneHostOnlyAndNoHostOrPortTwice) {
  EXPECT_NE(refusal("postgresql://u@db1,db2/x").find("more than one host"), std::string::npos);
  EXPECT_NE(refusal("postgresql://u@db/x?host=/run/postgresql").find("host given twice"),
            std::string::npos);
  EXPECT_NE(refusal("postgresql://u@db:5432/x?port=5433").find("port given twice"),
            std::string::npos);
}

TEST(PgUrl, RefusesOtherSchemesAndFragments) {
  EXPECT_NE(refusal("/var/lib/smtpscope.db").find("does not start with postgresql://"),
            std::string::npos);
  EXPECT_NE(refusal("postgresql://u@db/x?sslmode=require#frag").find("fragment"),
            std::string::npos);
}

TEST(PgUrl, BoundsTheLengthWithoutShowingTheText) {
  const std::string head = "postgresql://u:secret-password@db/";
  std::string at_limit = "postgresql://u@db/" + std::string(kMaxUrlBytes - 18, 'd');
  ASSERT_EQ(at_limit.size(), kMaxUrlBytes);
  EXPECT_TRUE(parse_url(at_limit));
  std::string over = head + std::string(kMaxUrlBytes + 1 - head.size(), 'd');
  std::string message = refusal(over);
  EXPECT_NE(message.find("longer than 4096 bytes"), std::string::npos) << message;
  EXPECT_EQ(message.find("secret-password"), std::string::npos) << message;
}

// The password never comes from the URL, and the refusal never shows it.
TEST(PgUrl, RefusesAPasswordInTheUrlWithoutShowingIt) {
  for (const char* text : {"postgresql://smtpscope:s3cret-pw@db.example/mail",
                           "postgresql://smtpscope:s3cret-pw@/mail?host=/run/postgresql",
                           "postgresql://smtpscope:s3cret-pw@[::1]:5432/mail",
                           "postgresql://smtpscope@db.example/mail?password=s3cret-pw",
                           "postgresql://smtpscope@db.example/mail?pass%77ord=s3cret-pw",
                           "postgresql://smtpscope@db.example/mail?passfile=/s3cret-pw"}) {
    std::string message = refusal(text);
    EXPECT_NE(message.find("a password in the URL is refused"), std::string::npos) << message;
    EXPECT_NE(message.find("database.password_file"), std::string::npos) << message;
    EXPECT_NE(message.find("SMTPSCOPE_DB_PASSWORD"), std::string::npos) << message;
    EXPECT_EQ(message.find("s3cret-pw"), std::string::npos) << message;
    EXPECT_NE(message.find("postgresql://smtpscope@"), std::string::npos) << message;
  }
}

// A password with a raw '/', '?' or '@' makes a malformed URL: its error
// does not show the password either.
TEST(PgUrl, MalformedUrlErrorsDoNotShowAPassword) {
  for (const char* text : {"postgresql://u:pa/ss@db/x", "postgresql://u:pa?ss@db/x",
                           "postgresql://u:5432/pa@db", "postgresql://u:p@ss@db:99999/x"}) {
    std::string message = refusal(text);
    EXPECT_EQ(message.find("pa/ss"), std::string::npos) << message;
    EXPECT_EQ(message.find("pa?ss"), std::string::npos) << message;
    EXPECT_EQ(message.find("5432/pa"), std::string::npos) << message;
    EXPECT_EQ(message.find("p@ss"), std::string::npos) << message;
  }
}

TEST(PgUrl, RedactsTextThatDoesNotParse) {
  EXPECT_EQ(redact_url_text("postgresql://u:secret@db/x"), "postgresql://u@db/x");
  EXPECT_EQ(redact_url_text("postgres://u:se@cr/et@db:1/x"), "postgres://u@db:1/x");
  EXPECT_EQ(redact_url_text("postgresql://db/x?sslmode=require&password=secret"),
            "postgresql://db/x?sslmode=require&password");
  EXPECT_EQ(redact_url_text("postgresql://db/x?pass%zzword=secret"),
            "postgresql://db/x?pass%zzword");
  EXPECT_EQ(redact_url_text("postgresql://u@db/x\x1b[2J"), "postgresql://u@db/x\\x1b[2J");
}

TEST(PgUrl, DisplayIsPrintable) {
  Url url;
  url.user = "u\n";
  url.host = "db";
  url.database = "x\x1b";
  EXPECT_EQ(display(url), "postgresql://u\\n@db/x\\x1b");
}

class PasswordFile : public ::testing::Test {
 protected:
  std::string write(const std::string& content, mode_t mode) {
    std::string path = dir_.file("password");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }
  testing::TempDir dir_;
};

std::string resolved(const PasswordSources& sources) {
  auto password = resolve_password(sources);
  EXPECT_TRUE(password) << (password ? "" : password.message());
  return password && password.value() ? *password.value() : "<none>";
}

std::string resolve_error(const PasswordSources& sources) {
  auto password = resolve_password(sources);
  EXPECT_FALSE(password);
  return password ? "" : password.message();
}

TEST_F(PasswordFile, ReadsTheFileWithoutItsTrailingNewline) {
  EXPECT_EQ(resolved({write("s3cret\n", 0600), std::nullopt, std::nullopt}), "s3cret");
  EXPECT_EQ(resolved({write("s3cret\r\n", 0640), std::nullopt, std::nullopt}), "s3cret");
  EXPECT_EQ(resolved({write("s3cret", 0600), std::nullopt, std::nullopt}), "s3cret");
  EXPECT_EQ(resolved({write(" two words \n\n", 0600), std::nullopt, std::nullopt}),
            " two words \n");
}

TEST_F(PasswordFile, TheFileWinsOverTheEnvironment) {
  EXPECT_EQ(resolved({write("from-file\n", 0600), "from-smtpscope-env", "from-pgpassword"}),
            "from-file");
}

TEST_F(PasswordFile, BoundsTheLength) {
  const std::string limit(kMaxPasswordBytes, 'p');
  EXPECT_EQ(resolved({write(limit + "\n", 0600), std::nullopt, std::nullopt}), limit);
  EXPECT_EQ(resolved({write(limit + "\r\n", 0600), std::nullopt, std::nullopt}), limit);
  std::string message = resolve_error({write(limit + "p", 0600), std::nullopt, std::nullopt});
  EXPECT_NE(message.find("longer than 1024 bytes"), std::string::npos) << message;
  EXPECT_EQ(message.find(limit), std::string::npos);
  EXPECT_FALSE(resolve_password({write(limit + "pp\n", 0600), std::nullopt, std::nullopt}));
}

TEST_F(PasswordFile, RefusesAWorldReadableEmptyOrMissingFile) {
  std::string message = resolve_error({write("s3cret\n", 0644), std::nullopt, "env"});
  EXPECT_NE(message.find("readable by every user (mode 0644)"), std::string::npos) << message;
  EXPECT_EQ(message.find("s3cret"), std::string::npos) << message;
  EXPECT_NE(resolve_error({write("\n", 0600), std::nullopt, "env"}).find(": empty"),
            std::string::npos);
  EXPECT_NE(resolve_error({write(std::string("a\0b", 3), 0600), std::nullopt, "env"}).find("NUL"),
            std::string::npos);
  message = resolve_error({dir_.file("absent"), std::nullopt, "env"});
  EXPECT_NE(message.find("absent: No such file or directory"), std::string::npos) << message;
}

TEST(PgPassword, EnvironmentInOrderThenNone) {
  EXPECT_EQ(resolved({"", "from-smtpscope-env", "from-pgpassword"}), "from-smtpscope-env");
  EXPECT_EQ(resolved({"", std::nullopt, "from-pgpassword"}), "from-pgpassword");
  EXPECT_EQ(resolved({"", "", "from-pgpassword"}), "from-pgpassword");
  EXPECT_EQ(resolved({"", std::nullopt, std::nullopt}), "<none>");
  std::string message = resolve_error({"", std::string(kMaxPasswordBytes + 1, 'p'), std::nullopt});
  EXPECT_NE(message.find("SMTPSCOPE_DB_PASSWORD: longer than"), std::string::npos) << message;
}

TEST(PgPassword, ReadsTheProcessEnvironment) {
  ::setenv("SMTPSCOPE_DB_PASSWORD", "env-one", 1);
  ::setenv("PGPASSWORD", "", 1);
  PasswordSources sources = PasswordSources::from_environment("/etc/x");
  ::unsetenv("SMTPSCOPE_DB_PASSWORD");
  ::unsetenv("PGPASSWORD");
  EXPECT_EQ(sources.password_file, "/etc/x");
  EXPECT_EQ(sources.smtpscope_env, "env-one");
  EXPECT_FALSE(sources.pgpassword_env);
}

}  // namespace
}  // namespace smtpscope::pg
