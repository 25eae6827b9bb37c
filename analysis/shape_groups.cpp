#include "shape_groups.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <map>
#include <set>
#include <sstream>

namespace smtpscope::analysis {

namespace {

struct GapBucket {
  long below;  // upper bound, exclusive
  const char* label;
  const char* regex;
};

// lround() of a pause of 2 s or more: never below 2.
constexpr GapBucket gap_buckets[] = {
    {10, "+2-9s", R"(\+[2-9]s)"},
    {60, "+10-59s", R"(\+[1-5][0-9]s)"},
    {600, "+60-599s", R"(\+(?:[6-9][0-9]|[1-5][0-9]{2})s)"},
    {-1, "+600s-", R"(\+(?:[6-9][0-9]{2}|[1-9][0-9]{3,})s)"},
};

// One token of a stage string: a letter, or a pause put in its bucket.
struct Token {
  std::string text;   // for the key
  std::string regex;  // matching every token of the same text
  bool operator==(const Token& other) const { return text == other.text; }
};

Token token_of(const std::string& raw) {
  if (raw.size() >= 3 && raw.front() == '+' && raw.back() == 's' &&
      std::all_of(raw.begin() + 1, raw.end() - 1, [](char c) { return c >= '0' && c <= '9'; }) &&
      raw.size() <= 12) {
    const long seconds = std::stol(raw.substr(1, raw.size() - 2));
    for (const auto& bucket : gap_buckets) {
      if (bucket.below < 0 || seconds < bucket.below) return {bucket.label, bucket.regex};
    }
  }
  return {raw, RE2::QuoteMeta(raw)};
}

bool ends_session(const Token& t) {
  return t.text == "Q" || t.text == "L" || t.text == "T" || t.text == "K" || t.text == "Z";
}

// The stage string cut into elements: single tokens, and transactions
// (from a MAIL up to the next MAIL or the end letter); consecutive
// identical transactions become one element with repeated = true.
struct Element {
  std::vector<Token> tokens;
  bool transaction = false;
  bool repeated = false;
};

std::vector<Element> elements_of(const std::string& stages) {
  std::vector<Element> out;
  std::istringstream words(stages);
  std::string word;
  bool in_transaction = false;
  while (words >> word) {
    Token t = token_of(word);
    if (t.text == "M") {
      out.push_back({{}, true, false});
      in_transaction = true;
    } else if (ends_session(t) || !in_transaction) {
      out.push_back({{}, false, false});
      in_transaction = false;
    }
    out.back().tokens.push_back(std::move(t));
  }
  std::vector<Element> compressed;
  for (auto& e : out) {
    if (e.transaction && !compressed.empty() && compressed.back().transaction &&
        compressed.back().tokens == e.tokens) {
      compressed.back().repeated = true;
    } else {
      compressed.push_back(std::move(e));
    }
  }
  return compressed;
}

std::string join_tokens(const std::vector<Token>& tokens, bool regex) {
  std::string out;
  for (const auto& t : tokens) {
    if (!out.empty()) out += ' ';
    out += regex ? t.regex : t.text;
  }
  return out;
}

std::string yaml_quoted(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
  }
  return out + "'";
}

struct Counter {
  int ok = 0, tried = 0;
};

Counter counter_of(const std::string& value) {
  Counter c;
  const auto slash = value.find('/');
  try {
    c.ok = std::stoi(value.substr(0, slash));
    c.tried = slash == std::string::npos ? c.ok : std::stoi(value.substr(slash + 1));
  } catch (const std::exception&) {
    c = {};
  }
  return c;
}

// The commands a pattern's `commands:` condition may name.
const std::vector<std::string>& condition_commands() {
  static const std::vector<std::string> names = {"helo", "ehlo", "starttls", "auth",   "mail",
                                                 "rcpt", "data", "bdat",     "rset",   "noop",
                                                 "vrfy", "etrn", "quit",     "unknown"};
  return names;
}

std::string helo_class(const SessionFacts& f) {
  if (f.helos.empty()) return "unknown";
  std::set<std::string> names;
  for (HeloQuirk q : f.quirks) names.insert(std::string(to_string(q)));
  if (names.empty()) return "plain";
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + n;
  return out;
}

std::string rejected_class(const SessionFacts& f) {
  if (f.perm_rejects > 0) return "permanent";
  return f.temp_rejects > 0 ? "temporary" : "none";
}

// `when:` conditions every member holds, as YAML lines.
std::string shared_conditions(const ShapeGroup& group, const std::vector<ShapeMember>& members) {
  const SessionFacts& first = *members[group.members.front()].facts;
  auto all = [&](auto test) {
    return std::all_of(group.members.begin(), group.members.end(),
                       [&](std::size_t i) { return test(*members[i].facts); });
  };
  std::string out;
  if (!first.log_counters.empty()) {
    std::string commands;
    for (const auto& name : condition_commands()) {
      auto found = first.log_counters.find(name);
      const Counter c = found == first.log_counters.end() ? Counter{} : counter_of(found->second);
      const char* state = c.tried == 0      ? "none"
                          : c.ok == c.tried ? "all-ok"
                          : c.ok == 0       ? "all-failed"
                                            : "failed";
      // Absent commands say what the client never did; only the telling ones.
      if (c.tried == 0 && name != "mail" && name != "auth" && name != "starttls" &&
          name != "data" && name != "quit") {
        continue;
      }
      commands += fmt::format("{}{}: {}", commands.empty() ? "" : ", ", name, state);
    }
    out += "      commands: {" + commands + "}\n";
  }
  const std::string rejected = rejected_class(first);
  if (all([&](const SessionFacts& f) { return rejected_class(f) == rejected; })) {
    out += "      rejected: " + rejected + "\n";
  }
  const std::pair<const char*, bool SessionFacts::*> flags[] = {
      {"helo_refused", &SessionFacts::helo_refused},
      {"pipelining", &SessionFacts::pipelining},
      {"pregreet", &SessionFacts::pregreet},
      {"non_smtp", &SessionFacts::non_smtp}};
  for (const auto& flag : flags) {
    const auto field = flag.second;  // a named copy: clang 14 cannot capture a structured binding
    if (all([&](const SessionFacts& f) { return f.*field; })) {
      out += fmt::format("      {}: true\n", flag.first);
    }
  }
  return out.empty() ? "" : "    when:\n" + out;
}

}  // namespace

std::string normalised_shape(const std::string& stages) {
  std::string out;
  for (const auto& e : elements_of(stages)) {
    if (!out.empty()) out += ' ';
    out += e.repeated ? "(" + join_tokens(e.tokens, false) + ")+" : join_tokens(e.tokens, false);
  }
  return out;
}

std::string shape_regex(const std::string& stages) {
  std::string out;
  for (const auto& e : elements_of(stages)) {
    if (!out.empty()) out += ' ';
    const std::string unit = join_tokens(e.tokens, true);
    out += e.repeated ? unit + "(?: " + unit + ")+" : unit;
  }
  return "^" + out + "$";
}

std::string command_signature(const SessionFacts& facts) {
  std::string out;
  for (const auto& [name, value] : facts.log_counters) {
    if (name == "commands") continue;
    const Counter c = counter_of(value);
    const std::string total = c.tried == 1 ? "1" : c.tried == 0 ? "0" : "N";
    const std::string ok = c.ok == c.tried ? "" : c.ok == 0 ? "0/" : "some/";
    out += fmt::format("{}{}={}{}", out.empty() ? "" : " ", name, ok, total);
  }
  return out;
}

std::vector<ShapeGroup> group_shapes(const std::vector<ShapeMember>& members,
                                     std::size_t min_sessions) {
  std::map<std::string, ShapeGroup> by_key;
  std::map<std::string, std::set<std::string>> clients;
  for (std::size_t i = 0; i < members.size(); ++i) {
    const SessionFacts& f = *members[i].facts;
    ShapeGroup probe{normalised_shape(f.stages),
                     command_signature(f),
                     helo_class(f),
                     members[i].timing,
                     "",
                     {},
                     0};
    const std::string key =
        probe.shape + '\x1f' + probe.commands + '\x1f' + probe.helo + '\x1f' + probe.timing;
    auto [it, added] = by_key.try_emplace(key, std::move(probe));
    if (added) it->second.stages_regex = shape_regex(f.stages);
    it->second.members.push_back(i);
    clients[key].insert(members[i].client);
  }
  std::vector<ShapeGroup> out;
  for (auto& [key, group] : by_key) {
    if (group.members.size() < std::max<std::size_t>(min_sessions, 1)) continue;
    group.clients = clients[key].size();
    out.push_back(std::move(group));
  }
  std::stable_sort(out.begin(), out.end(), [](const ShapeGroup& a, const ShapeGroup& b) {
    if (a.members.size() != b.members.size()) return a.members.size() > b.members.size();
    return a.clients > b.clients;
  });
  return out;
}

std::string pattern_entry(const ShapeGroup& group, const std::vector<ShapeMember>& members,
                          const std::string& name) {
  const std::string& example = members[group.members.front()].client;
  const bool plain_address =
      !example.empty() && example.size() <= 45 &&
      std::all_of(example.begin(), example.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c)) || c == '.' || c == ':';
      });
  std::string out = "  - name: " + yaml_quoted(name) + "\n";
  out += "    title: " + yaml_quoted("Unnamed shape " + group.shape) + "\n";
  out += fmt::format("    # {} sessions from {} clients; commands: {}; HELO: {}; timing: {}\n",
                     group.members.size(), group.clients,
                     group.commands.empty() ? "(no log)" : group.commands, group.helo,
                     group.timing.empty() ? "-" : group.timing);
  out += "    stages: " + yaml_quoted(group.stages_regex) + "\n";
  out += shared_conditions(group, members);
  out += "    explanation: " +
         yaml_quoted(fmt::format("Say what these sessions are ({} sessions from {} clients{}).",
                                 group.members.size(), group.clients,
                                 plain_address ? ", e.g. " + example : std::string())) +
         "\n";
  out += "    advice: " + yaml_quoted("Say what an admin should do about them.") + "\n";
  return out;
}

}  // namespace smtpscope::analysis
