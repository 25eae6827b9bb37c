#include "shape_groups.h"

#include <gtest/gtest.h>
#include <re2/re2.h>

#include "patterns.h"

namespace smtpscope::analysis {
namespace {

SessionFacts facts(const std::string& stages, std::map<std::string, std::string> counters = {}) {
  SessionFacts f;
  f.stages = stages;
  f.log_counters = std::move(counters);
  f.have_log = !f.log_counters.empty();
  return f;
}

std::vector<ShapeMember> members_of(const std::vector<SessionFacts>& all) {
  std::vector<ShapeMember> out;
  for (std::size_t i = 0; i < all.size(); ++i) {
    out.push_back({&all[i], "192.0.2." + std::to_string(i + 1), ""});
  }
  return out;
}

// The entry loads with the product's loader, as the only pattern of a file.
Pattern loaded(const std::string& entry) {
  auto set = parse_patterns("patterns:\n" + entry, "printed entry");
  EXPECT_TRUE(set) << set.message() << "\n" << entry;
  if (!set || set.value().patterns.size() != 1) return {};
  return set.value().patterns.front();
}

TEST(ShapeGroups, PausesOfOneBucketFallInOneGroup) {
  const std::map<std::string, std::string> counters = {{"ehlo", "1"}, {"quit", "1"}};
  const std::vector<SessionFacts> all = {facts("C H +10s Q", counters),
                                         facts("C H +11s Q", counters)};
  const auto members = members_of(all);
  const auto groups = group_shapes(members, 1);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].members.size(), 2u);
  EXPECT_EQ(groups[0].clients, 2u);
  EXPECT_EQ(groups[0].shape, "C H +10-59s Q");
}

TEST(ShapeGroups, PausesOfDifferentBucketsFallApart) {
  const std::vector<SessionFacts> all = {facts("C H +9s Q"), facts("C H +10s Q"),
                                         facts("C H +60s Q"), facts("C H +600s Q")};
  EXPECT_EQ(group_shapes(members_of(all), 1).size(), 4u);
}

TEST(ShapeGroups, DifferentCommandSignaturesFallApart) {
  const std::vector<SessionFacts> all = {
      facts("C H M A Q", {{"ehlo", "1"}, {"mail", "0/1"}, {"quit", "1"}}),
      facts("C H M A Q", {{"ehlo", "1"}, {"mail", "1"}, {"rcpt", "0/1"}, {"quit", "1"}}),
      facts("C H M A Q",
            {{"ehlo", "1"}, {"mail", "1"}, {"rcpt", "0/1"}, {"quit", "1"}, {"commands", "3/4"}})};
  const auto groups = group_shapes(members_of(all), 1);
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].members.size(), 2u);  // the total "commands" is not part of the signature
  EXPECT_EQ(groups[0].commands, "ehlo=1 mail=1 quit=1 rcpt=0/1");
  EXPECT_EQ(groups[1].commands, "ehlo=1 mail=0/1 quit=1");
}

TEST(ShapeGroups, HeloClassAndTimingSplitGroups) {
  std::vector<SessionFacts> all = {facts("C H Q"), facts("C H Q"), facts("C H Q")};
  all[0].helos = {"mx.example.org"};
  all[1].helos = {"workstation"};
  all[1].quirks = {HeloQuirk::non_fqdn};
  all[2].helos = {"mx.example.org"};
  auto members = members_of(all);
  members[2].timing = "regular";
  const auto groups = group_shapes(members, 1);
  ASSERT_EQ(groups.size(), 3u);
}

TEST(ShapeGroups, RepeatedTransactionsCompressToOneShape) {
  const std::vector<SessionFacts> all = {facts("C H M R D E M R D E Q"),
                                         facts("C H M R D E M R D E M R D E M R D E Q")};
  const auto members = members_of(all);
  const auto groups = group_shapes(members, 1);
  ASSERT_EQ(groups.size(), 1u);
  EXPECT_EQ(groups[0].shape, "C H (M R D E)+ Q");
  // One transaction is another shape.
  EXPECT_NE(normalised_shape("C H M R D E Q"), groups[0].shape);
}

TEST(ShapeGroups, RankedBySessionsThenClients) {
  std::vector<SessionFacts> all = {facts("C Q"), facts("C H Q"), facts("C H Q"), facts("C L"),
                                   facts("C L")};
  auto members = members_of(all);
  members[4].client = members[3].client;  // C L: 2 sessions, 1 client
  members[1].timing = members[2].timing = "";
  const auto groups = group_shapes(members, 2);  // C Q alone is below the minimum
  ASSERT_EQ(groups.size(), 2u);
  EXPECT_EQ(groups[0].shape, "C H Q");
  EXPECT_EQ(groups[0].clients, 2u);
  EXPECT_EQ(groups[1].shape, "C L");
  EXPECT_EQ(groups[1].clients, 1u);
}

TEST(ShapeGroups, RegexIsValidRe2AndMatchesEveryMember) {
  const std::vector<SessionFacts> all = {
      facts("C H +3s M R +12s A +75s M R D E M R D E Q"),
      facts("C H +9s M R +59s A +599s M R D E M R D E M R D E Q"),
      facts("C H +2s M R +10s A +60s M R D E M R D E Q")};
  const auto members = members_of(all);
  const auto groups = group_shapes(members, 1);
  ASSERT_EQ(groups.size(), 1u);
  RE2 regex(groups[0].stages_regex);
  ASSERT_TRUE(regex.ok()) << regex.error();
  for (const auto& f : all) EXPECT_TRUE(RE2::FullMatch(f.stages, regex)) << f.stages;
  // Anchored: a longer session of another shape is not matched.
  EXPECT_FALSE(RE2::PartialMatch("C H +3s M R +12s A +75s M R D E M R D E L", regex));
  EXPECT_FALSE(RE2::PartialMatch("C H +3s M R +12s A +75s M R D E Q", regex));
  EXPECT_FALSE(RE2::PartialMatch("C H +3s M R +12s A +700s M R D E M R D E Q", regex));
}

TEST(ShapeGroups, LongPausesAndOddTokensStayValid) {
  for (const std::string stages :
       {"C H +12345s Q", "C +600s L", "C H U U U K", "C H M J J A Q", "", "M R D E M R D E Z"}) {
    RE2 regex(shape_regex(stages));
    ASSERT_TRUE(regex.ok()) << stages << ": " << regex.error();
    EXPECT_TRUE(RE2::FullMatch(stages, regex)) << stages << " vs " << shape_regex(stages);
  }
}

TEST(ShapeGroups, PrintedEntryLoadsAndNamesTheGroupsSessions) {
  std::vector<SessionFacts> all = {
      facts("C H H +14s Q", {{"ehlo", "2"}, {"starttls", "1"}, {"quit", "1"}, {"commands", "4"}}),
      facts("C H H +31s Q", {{"ehlo", "2"}, {"starttls", "1"}, {"quit", "1"}, {"commands", "4"}})};
  all[0].temp_rejects = all[1].temp_rejects = 1;
  all[0].pregreet = all[1].pregreet = true;
  const auto members = members_of(all);
  const auto groups = group_shapes(members, 1);
  ASSERT_EQ(groups.size(), 1u);
  const std::string entry = pattern_entry(groups[0], members, "it's-mine");
  const Pattern p = loaded(entry);
  EXPECT_EQ(p.name, "it's-mine");
  ASSERT_NE(p.stages, nullptr);
  EXPECT_NE(entry.find("ehlo: all-ok"), std::string::npos) << entry;
  EXPECT_NE(entry.find("mail: none"), std::string::npos) << entry;
  EXPECT_NE(entry.find("rejected: temporary"), std::string::npos) << entry;
  EXPECT_NE(entry.find("pregreet: true"), std::string::npos) << entry;
  for (const auto& f : all) EXPECT_TRUE(matches(p, f)) << f.stages << "\n" << entry;
  // The conditions are the group's: another signature is not named.
  SessionFacts other = all[0];
  other.log_counters["mail"] = "0/1";
  EXPECT_FALSE(matches(p, other));
}

TEST(ShapeGroups, EntryWithoutLogHasNoCommandCondition) {
  const std::vector<SessionFacts> all = {facts("C H M R D E Q"), facts("C H M R D E Q")};
  const auto members = members_of(all);
  const auto groups = group_shapes(members, 1);
  ASSERT_EQ(groups.size(), 1u);
  const std::string entry = pattern_entry(groups[0], members, "delivers");
  EXPECT_EQ(entry.find("      commands: {"), std::string::npos) << entry;
  const Pattern p = loaded(entry);
  for (const auto& f : all) EXPECT_TRUE(matches(p, f));
}

}  // namespace
}  // namespace smtpscope::analysis
