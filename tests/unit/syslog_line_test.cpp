#include "syslog_line.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

namespace smtpscope::ingest {
namespace {

// These tests run in UTC so BSD (local time) stamps have a known value.
class SyslogLineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
  }
  // 2026-11-25 12:00:00 UTC as the reference (the file's mtime).
  YearTracker years{1'795'608'000'000'000};
};

TEST_F(SyslogLineTest, ReadsTheBsdForm) {
  auto line = parse_syslog_line(
      "Nov 23 02:39:39 mx postfix/smtpd[1610]: connect from localhost[127.0.0.1]", years);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->time_us, 1'795'401'579'000'000);  // 2026-11-23T02:39:39Z
  EXPECT_EQ(line->host, "mx");
  EXPECT_EQ(line->program, "postfix/smtpd");
  EXPECT_EQ(line->daemon, "smtpd");
  EXPECT_EQ(line->pid, 1610);
  EXPECT_EQ(line->message, "connect from localhost[127.0.0.1]");
}

TEST_F(SyslogLineTest, TakesSpaceAndZeroPaddedDays) {
  auto spaced = parse_syslog_line("Nov  3 02:39:39 mx postfix/smtpd[1]: x", years);
  auto zeroed = parse_syslog_line("Nov 03 02:39:39 mx postfix/smtpd[1]: x", years);
  ASSERT_TRUE(spaced && zeroed);
  EXPECT_EQ(spaced->time_us, zeroed->time_us);
}

TEST_F(SyslogLineTest, ReadsRfc3339WithFractionAndZone) {
  auto line = parse_syslog_line(
      "2023-03-14T00:00:31.185246+01:00 mx postfix-in/submission/smtpd[7]: hello", years);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->time_us, 1'678'748'431'185'246);  // 2023-03-13T23:00:31.185246Z
  EXPECT_EQ(line->program, "postfix-in/submission/smtpd");
  EXPECT_EQ(line->daemon, "smtpd");
  auto zulu = parse_syslog_line("2023-03-13T23:00:31Z mx postfix/qmgr[1]: x", years);
  ASSERT_TRUE(zulu);
  EXPECT_EQ(zulu->time_us, 1'678'748'431'000'000);
}

TEST_F(SyslogLineTest, TagsWithoutPidAreSyslogLinesToo) {
  auto line = parse_syslog_line("Nov 16 11:00:20 server dovecot: lmtp(30301): Connect", years);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->program, "dovecot");
  EXPECT_EQ(line->pid, 0);
}

TEST_F(SyslogLineTest, InfersTheYearAndFollowsTheRollover) {
  YearTracker january{1'767'268'800'000'000};  // 2026-01-01 12:00 UTC
  auto december = parse_syslog_line("Dec 31 23:59:59 mx postfix/smtpd[1]: a", january);
  auto new_year = parse_syslog_line("Jan  1 00:00:01 mx postfix/smtpd[1]: b", january);
  ASSERT_TRUE(december && new_year);
  EXPECT_EQ(december->time_us, 1'767'225'599'000'000);  // 2025-12-31T23:59:59Z
  EXPECT_EQ(new_year->time_us, 1'767'225'601'000'000);  // 2026-01-01T00:00:01Z
}

int year_of(const std::optional<SyslogLine>& line) {
  const std::time_t seconds = static_cast<std::time_t>(line->time_us / 1'000'000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  return utc.tm_year + 1900;
}

std::vector<int> years_of(YearTracker& years, std::initializer_list<const char*> stamps) {
  std::vector<int> out;
  for (const char* stamp : stamps) {
    const std::string line = std::string(stamp) + " mx postfix/smtpd[1]: x";
    auto parsed = parse_syslog_line(line, years);
    EXPECT_TRUE(parsed) << line;
    out.push_back(parsed ? year_of(parsed) : 0);
  }
  return out;
}

// Months that go back without a Dec -> Jan boundary (a log out of order)
// keep the year; only December -> January moves it on.
TEST_F(SyslogLineTest, MonthsGoingBackDoNotMoveTheYear) {
  // The file's mtime: 2026-11-25.
  EXPECT_EQ(years_of(years, {"Nov  3 01:00:00", "Jan  5 01:00:00", "Nov  4 01:00:00"}),
            (std::vector<int>{2026, 2026, 2026}));
  YearTracker given = YearTracker::starting_in(2026);  // --year 2026
  EXPECT_EQ(years_of(given, {"Nov  3 01:00:00", "Jan  5 01:00:00", "Nov  4 01:00:00",
                             "Mar  1 00:00:00"}),
            (std::vector<int>{2026, 2026, 2026, 2026}));
  YearTracker rollover = YearTracker::starting_in(2025);
  EXPECT_EQ(years_of(rollover, {"Nov 30 01:00:00", "Dec 31 23:59:59", "Jan  1 00:00:01",
                                "Feb  1 00:00:00", "Dec  1 00:00:00", "Jan  1 00:00:00"}),
            (std::vector<int>{2025, 2025, 2026, 2026, 2026, 2027}));
}

TEST_F(SyslogLineTest, PlausibleTimesAreFrom1990ToAFewDaysAhead) {
  const std::int64_t now = 1'795'608'000'000'000;  // 2026-11-25 12:00 UTC
  const std::int64_t day = 86'400'000'000;
  EXPECT_TRUE(plausible_time(631'152'000'000'000, now));  // 1990-01-01T00:00:00Z
  EXPECT_FALSE(plausible_time(631'152'000'000'000 - 1, now));
  EXPECT_TRUE(plausible_time(now + 3 * day, now));
  EXPECT_FALSE(plausible_time(now + 3 * day + 1, now));
  auto far = parse_syslog_line("9999-12-31T23:59:59.999999+14:00 mx postfix/smtpd[1]: x", years);
  ASSERT_TRUE(far);
  EXPECT_EQ(year_of(far), 9999);
  EXPECT_FALSE(plausible_time(far->time_us, now));
  auto early = parse_syslog_line("0000-01-01T00:00:00-14:00 mx postfix/smtpd[1]: x", years);
  ASSERT_TRUE(early);
  EXPECT_FALSE(plausible_time(early->time_us, now));
}

// 2013-06-10T06:27:30.123Z, the relay log's first line.
constexpr std::int64_t relay_first_us = 1'370'845'650'123'000;

TEST_F(SyslogLineTest, ReadsYearFirstWithFraction) {
  auto line = parse_syslog_line(
      "2013 Jun 10 06:27:30.123 gds39d postfix/smtpd[5530]: connect from x[1.2.3.4]", years);
  ASSERT_TRUE(line);
  EXPECT_EQ(line->time_us, relay_first_us);
  EXPECT_FALSE(line->whole_seconds);
  EXPECT_EQ(line->host, "gds39d");
  auto whole = parse_syslog_line("2013 Jun 10 06:27:30 gds39d postfix/smtpd[5530]: x", years);
  ASSERT_TRUE(whole);
  EXPECT_EQ(whole->time_us, relay_first_us - 123'000);
  EXPECT_TRUE(whole->whole_seconds);
  auto padded = parse_syslog_line("2013 Jun  9 06:27:30 h p[1]: x", years);
  ASSERT_TRUE(padded);
  EXPECT_EQ(padded->time_us, relay_first_us - 123'000 - 86'400'000'000);
}

TEST_F(SyslogLineTest, ReadsBsdWithFractionOrYear) {
  // journalctl -o short-precise
  auto precise = parse_syslog_line("Jun 10 06:27:30.123456 h postfix/smtpd[1]: x", years);
  ASSERT_TRUE(precise);
  EXPECT_FALSE(precise->whole_seconds);
  EXPECT_EQ(precise->time_us % 1'000'000, 123'456);
  auto with_year = parse_syslog_line("Jun 10 2013 06:27:30 h postfix/smtpd[1]: x", years);
  ASSERT_TRUE(with_year);
  EXPECT_EQ(with_year->time_us, relay_first_us - 123'000);
}

TEST_F(SyslogLineTest, ReadsIsoWithSpaceOrWithoutZone) {
  for (const char* text :
       {"2013-06-10 06:27:30.123 h postfix/smtpd[1]: x", "2013-06-10T06:27:30.123 h p[1]: x",
        "2013-06-10T08:27:30.123+0200 h p[1]: x", "2013-06-10T08:27:30.123+02:00 h p[1]: x",
        "2013-06-10T04:27:30.123-02 h p[1]: x", "2013-06-10 06:27:30.123Z h p[1]: x"}) {
    auto line = parse_syslog_line(text, years);
    ASSERT_TRUE(line) << text;
    EXPECT_EQ(line->time_us, relay_first_us) << text;
  }
  // journalctl -o short-iso: whole seconds, zone without a colon
  auto short_iso = parse_syslog_line("2013-06-10T08:27:30+0200 mx postfix/qmgr[9]: x", years);
  ASSERT_TRUE(short_iso);
  EXPECT_EQ(short_iso->time_us, relay_first_us - 123'000);
  EXPECT_TRUE(short_iso->whole_seconds);
}

TEST_F(SyslogLineTest, SaysWhetherTheTimeOrTheRestIsBroken) {
  SyslogFault fault{};
  EXPECT_FALSE(parse_syslog_line("10/06/2013 06:27:30 h p[1]: x", years, &fault));
  EXPECT_EQ(fault, SyslogFault::time);
  EXPECT_FALSE(parse_syslog_line("2013 Jun 10 06:27:30. h p[1]: x", years, &fault));
  EXPECT_EQ(fault, SyslogFault::time);
  EXPECT_FALSE(parse_syslog_line("Jun 10 06:27:30 h p[x]: x", years, &fault));
  EXPECT_EQ(fault, SyslogFault::layout);
}

TEST_F(SyslogLineTest, RejectsWhatIsNotASyslogLine) {
  for (const char* bad : {"", "Jan", "Jan 1 00:00:00", "Foo 1 00:00:00 hostname x: y",
                          "Jan: 1 00:00:00 hostname postfix/postscreen[12345]: foo",
                          "Jan 1 00:00:00 hostname postfix/postscreen[abcde]: foo",
                          "Jan 1 00:00:00 hostname postfix/postscreen[12345",
                          "Jan 1 00:00:00 hostname postfix/postscreen",
                          "Jan 32 00:00:00 host p[1]: x", "Jan 1 24:00:00 host p[1]: x",
                          "2023-13-01T00:00:00Z host p[1]: x", "# a comment"}) {
    EXPECT_FALSE(parse_syslog_line(bad, years)) << bad;
  }
}

}  // namespace
}  // namespace smtpscope::ingest
