#include "journal_reader.h"

#include <gtest/gtest.h>

namespace smtpscope::ingest {
namespace {

TEST(JournalReader, PostfixIdentifiersWhateverTheSyslogName) {
  for (const char* yes : {"postfix/smtpd", "postfix/submission/smtpd", "postfix-in/smtpd",
                          "postfix-out/qmgr", "mx-out/smtp", "relay/postscreen"}) {
    EXPECT_TRUE(postfix_identifier(yes)) << yes;
  }
  for (const char* no : {"postfix", "sshd", "dovecot", "systemd", "opendkim", "/smtpd",
                         "mx-out/imap", ""}) {
    EXPECT_FALSE(postfix_identifier(no)) << no;
  }
}

TEST(JournalReader, AMissingFileIsAnErrorNamingIt) {
  auto reader = JournalReader::open({"/nonexistent/x.journal", ""}, 1000);
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.message().find("/nonexistent/x.journal"), std::string::npos);
}

}  // namespace
}  // namespace smtpscope::ingest
