#include "helo_quirks.h"

#include <gtest/gtest.h>

namespace smtpscope::analysis {
namespace {

using Q = HeloQuirk;

const HeloContext context{"192.0.2.7", "mail.client.example", "mx.test.example", "198.51.100.1",
                          "ESMTP"};

std::vector<HeloQuirk> quirks(std::string_view helo, HeloContext c = context) {
  return classify_helo(helo, c);
}

TEST(HeloQuirks, AGoodNameHasNone) {
  EXPECT_TRUE(quirks("mail.client.example").empty());
  EXPECT_TRUE(quirks("MAIL.Client.Example").empty());
}

TEST(HeloQuirks, EachClass) {
  EXPECT_EQ(quirks(""), std::vector<Q>{Q::empty});
  EXPECT_EQ(quirks("192.0.2.7"), std::vector<Q>{Q::bare_ip});
  EXPECT_EQ(quirks("[192.0.2.7]"), std::vector<Q>{Q::address_literal});
  EXPECT_EQ(quirks("[IPv6:2001:db8::1]"), (std::vector<Q>{Q::address_literal, Q::literal_mismatch}));
  EXPECT_EQ(quirks("[10.0.0.1]"), (std::vector<Q>{Q::address_literal, Q::literal_mismatch}));
  EXPECT_EQ(quirks("[not-an-ip]"), (std::vector<Q>{Q::address_literal, Q::invalid_characters}));
  EXPECT_EQ(quirks("workstation"), std::vector<Q>{Q::non_fqdn});
  EXPECT_EQ(quirks("localhost"), std::vector<Q>{Q::localhost});
  EXPECT_EQ(quirks("localhost.localdomain"), std::vector<Q>{Q::localhost});
  EXPECT_EQ(quirks("mx.test.example"), (std::vector<Q>{Q::our_name, Q::name_mismatch}));
  EXPECT_EQ(quirks("198.51.100.1"), (std::vector<Q>{Q::bare_ip, Q::our_name}));
  EXPECT_EQ(quirks("[198.51.100.1]"),
            (std::vector<Q>{Q::address_literal, Q::literal_mismatch, Q::our_name}));
  EXPECT_EQ(quirks("bad_name.example"),
            (std::vector<Q>{Q::invalid_characters, Q::name_mismatch}));
  EXPECT_EQ(quirks("two words<x>"), (std::vector<Q>{Q::invalid_characters, Q::non_fqdn}));
  EXPECT_EQ(quirks(std::string(70, 'a') + ".example"), (std::vector<Q>{Q::over_long,
                                                                         Q::name_mismatch}));
  EXPECT_EQ(quirks("192-0-2-7.dyn.isp.example"),
            (std::vector<Q>{Q::dynamic_looking, Q::name_mismatch}));
  EXPECT_EQ(quirks("other.example.net"), std::vector<Q>{Q::name_mismatch});
}

TEST(HeloQuirks, UnknownClientNameCannotMismatch) {
  HeloContext unknown = context;
  unknown.client_name = "unknown";
  EXPECT_TRUE(quirks("other.example.net", unknown).empty());
}

TEST(HeloQuirks, HeloInsteadOfEhlo) {
  HeloContext old = context;
  old.protocol = "SMTP";
  EXPECT_EQ(quirks("mail.client.example", old), std::vector<Q>{Q::helo_not_ehlo});
}

TEST(HeloQuirks, NamesForReports) {
  EXPECT_EQ(to_string(Q::bare_ip), "bare-ip");
  EXPECT_EQ(to_string(Q::changed_in_session), "changed-in-session");
}

TEST(HeloQuirks, ThePtrCheck) {
  EXPECT_EQ(classify_name_check("mismatch"), Q::ptr_mismatch);
  EXPECT_EQ(classify_name_check("unresolved"), Q::unresolved_name);
  EXPECT_EQ(classify_name_check(""), std::nullopt);
  EXPECT_EQ(classify_name_check("Mismatch"), std::nullopt);
  EXPECT_EQ(to_string(Q::ptr_mismatch), "ptr-mismatch");
  EXPECT_EQ(to_string(Q::unresolved_name), "unresolved-name");
}

}  // namespace
}  // namespace smtpscope::analysis
