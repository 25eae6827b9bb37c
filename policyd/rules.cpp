#include "rules.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <fstream>
#include <sstream>

#include "duration.h"
#include "byte_regex.h"
#include "yaml_load.h"

namespace smtpscope::policy {
namespace {

constexpr std::size_t max_rules = 1000;
constexpr std::size_t max_action_bytes = 1000;

// access(5) actions a policy server may return (postfix-facts.md 2.6).
bool valid_action(const std::string& action) {
  static constexpr std::array<std::string_view, 17> keywords = {
      "OK", "REJECT", "DEFER", "DEFER_IF_REJECT", "DEFER_IF_PERMIT", "DUNNO", "BCC", "DISCARD",
      "FILTER", "HOLD", "PREPEND", "REDIRECT", "INFO", "WARN", "permit", "reject", "defer"};
  if (action.empty() || action.size() > max_action_bytes) return false;
  if (action.find_first_of("\r\n") != std::string::npos) return false;
  const std::string_view verb = std::string_view(action).substr(0, action.find(' '));
  if (verb.size() == 3 && (verb[0] == '4' || verb[0] == '5') && std::isdigit(verb[1]) &&
      std::isdigit(verb[2])) {
    return true;
  }
  for (auto keyword : keywords) {
    if (verb == keyword) return true;
  }
  return false;
}

std::string where(const std::string& name, const YAML::Node& node) {
  return node.Mark().line >= 0 ? fmt::format("{}:{}", name, node.Mark().line + 1) : name;
}

Result<AttributeCondition> parse_condition(const std::string& attribute, const YAML::Node& node) {
  AttributeCondition c;
  c.attribute = attribute;
  if (node.IsScalar()) {
    c.values = {node.Scalar()};
    return c;
  }
  if (!node.IsMap() || node.size() != 1) {
    return Status::error("expected a value, or one of {matches: REGEX}, {in: [..]}, "
                         "{empty: true|false}");
  }
  const std::string op = node.begin()->first.as<std::string>();
  const YAML::Node value = node.begin()->second;
  if (op == "matches" && value.IsScalar()) {
    c.kind = AttributeCondition::Kind::matches;
    auto compiled = compile_byte_regex(value.Scalar());
    if (!compiled) {
      return Status::error(fmt::format("bad regular expression \"{}\": {}", value.Scalar(),
                                       compiled.message()));
    }
    c.pattern = std::move(compiled).value();
    return c;
  }
  if (op == "in" && value.IsSequence()) {
    c.kind = AttributeCondition::Kind::one_of;
    for (const auto& item : value) c.values.push_back(item.as<std::string>());
    return c;
  }
  if (op == "empty" && value.IsScalar() && (value.Scalar() == "true" || value.Scalar() == "false")) {
    c.kind = AttributeCondition::Kind::empty;
    c.want_empty = value.Scalar() == "true";
    return c;
  }
  return Status::error(fmt::format("unknown test \"{}\" (use matches, in or empty)", op));
}

Result<HistoryCondition> parse_history(const YAML::Node& node) {
  if (!node.IsMap()) return Status::error("client_history: expected a mapping");
  HistoryCondition h;
  h.within_us = 86'400'000'000;
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    const std::string text = entry.second.IsScalar() ? entry.second.Scalar() : "";
    if (key == "within") {
      auto window = parse_duration_us(text);
      if (!window) return window.status().context("client_history.within");
      h.within_us = window.value();
      continue;
    }
    if (key == "helo_quirk" || key == "fingerprint" || key == "pattern") {
      if (text.empty()) return Status::error(fmt::format("client_history.{}: expected a name", key));
      (key == "helo_quirk" ? h.helo_quirk : key == "fingerprint" ? h.fingerprint : h.pattern) = text;
      continue;
    }
    std::int64_t count = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), count);
    if (ec != std::errc() || end != text.data() + text.size() || count < 0) {
      return Status::error(fmt::format("client_history.{}: expected a count", key));
    }
    if (key == "sessions_at_least") {
      h.sessions_at_least = count;
    } else if (key == "aborted_transactions_at_least") {
      h.aborted_transactions_at_least = count;
    } else if (key == "rejected_recipients_at_least") {
      h.rejected_recipients_at_least = count;
    } else {
      return Status::error(fmt::format("client_history: unknown key \"{}\"", key));
    }
  }
  return h;
}

Result<Rule> parse_rule(const YAML::Node& node, const std::string& name) {
  if (!node.IsMap()) {
    return Status::error(where(name, node) + ": a rule is a mapping with name, when, action");
  }
  Rule rule;
  rule.line = node.Mark().line + 1;
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    if (key == "name" && entry.second.IsScalar()) {
      rule.name = entry.second.Scalar();
    } else if (key == "action" && entry.second.IsScalar()) {
      rule.action = entry.second.Scalar();
      if (!valid_action(rule.action)) {
        return Status::error(fmt::format(
            "{}: action \"{}\" is not an access(5) action (DUNNO, OK, REJECT text, DEFER_IF_PERMIT "
            "text, 4NN/5NN text, PREPEND header: value, WARN text, ...)",
            where(name, entry.second), rule.action));
      }
    } else if (key == "when" && entry.second.IsMap()) {
      for (const auto& test : entry.second) {
        auto condition = parse_condition(test.first.as<std::string>(), test.second);
        if (!condition) {
          return Status::error(fmt::format("{}: when.{}: {}", where(name, test.second),
                                           test.first.as<std::string>(), condition.message()));
        }
        rule.when.push_back(std::move(condition).value());
      }
    } else if (key == "client_history") {
      auto history = parse_history(entry.second);
      if (!history) return Status::error(where(name, entry.second) + ": " + history.message());
      rule.history = history.value();
    } else {
      return Status::error(fmt::format("{}: unknown rule key \"{}\" (name, when, client_history, "
                                       "action)", where(name, entry.first), key));
    }
  }
  if (rule.name.empty()) return Status::error(where(name, node) + ": rule without a name");
  if (rule.action.empty()) {
    return Status::error(fmt::format("{}: rule \"{}\" has no action", where(name, node), rule.name));
  }
  return rule;
}

bool holds(const AttributeCondition& c, const Request& request) {
  const std::string_view value = request.get(c.attribute);
  switch (c.kind) {
    case AttributeCondition::Kind::equals: return value == c.values.front();
    case AttributeCondition::Kind::one_of:
      return std::find(c.values.begin(), c.values.end(), value) != c.values.end();
    case AttributeCondition::Kind::empty: return value.empty() == c.want_empty;
    case AttributeCondition::Kind::matches:
      return re2::RE2::PartialMatch(re2::StringPiece(value.data(), value.size()), *c.pattern);
  }
  return false;
}

bool holds(const HistoryCondition& h, const Request& request, HistorySource* source) {
  if (source == nullptr) return false;
  const auto known = source->history(std::string(request.get("client_address")), h.within_us);
  if (!known) return false;
  auto at_least = [](const std::optional<std::int64_t>& bound, std::int64_t value) {
    return !bound || value >= *bound;
  };
  auto seen = [](const std::optional<std::string>& wanted, const std::set<std::string>& known_set) {
    return !wanted || known_set.contains(*wanted);
  };
  return at_least(h.sessions_at_least, known->sessions) &&
         at_least(h.aborted_transactions_at_least, known->aborted_transactions) &&
         at_least(h.rejected_recipients_at_least, known->rejected_recipients) &&
         seen(h.helo_quirk, known->helo_quirks) && seen(h.fingerprint, known->fingerprints) &&
         seen(h.pattern, known->patterns);
}

}  // namespace

Result<RuleSet> parse_rules(const std::string& yaml, const std::string& name) {
  try {
    const YAML::Node root = load_yaml_strict(yaml);
    RuleSet set;
    if (root.IsNull()) return set;
    if (!root.IsMap() || !root["rules"] || !root["rules"].IsSequence()) {
      return Status::error(name + ": expected \"rules:\" followed by a list of rules");
    }
    for (const auto& entry : root) {
      if (entry.first.as<std::string>() != "rules") {
        return Status::error(fmt::format("{}: unknown key \"{}\"", where(name, entry.first),
                                         entry.first.as<std::string>()));
      }
    }
    if (root["rules"].size() > max_rules) {
      return Status::error(fmt::format("{}: more than {} rules", name, max_rules));
    }
    for (const auto& node : root["rules"]) {
      auto rule = parse_rule(node, name);
      if (!rule) return rule.status();
      set.rules.push_back(std::move(rule).value());
    }
    return set;
  } catch (const YAML::Exception& e) {
    return Status::error(fmt::format("{}:{}: {}", name, e.mark.line + 1, e.msg));
  }
}

Result<RuleSet> load_rules(const std::string& path) {
  std::ifstream file(path);
  if (!file) return Status::error(path + ": cannot read the file");
  std::ostringstream text;
  text << file.rdbuf();
  return parse_rules(text.str(), path);
}

Decision decide(const RuleSet& rules, const Request& request, HistorySource* history) {
  for (const auto& rule : rules.rules) {
    const bool attributes_hold = std::all_of(rule.when.begin(), rule.when.end(),
                                             [&](const auto& c) { return holds(c, request); });
    if (!attributes_hold) continue;
    if (rule.history && !holds(*rule.history, request, history)) continue;
    return Decision{rule.action, rule.name};
  }
  return Decision{};
}

}  // namespace smtpscope::policy
