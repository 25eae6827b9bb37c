#include "patterns.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "byte_regex.h"
#include "yaml_load.h"

namespace smtpscope::analysis {
namespace {

std::string where(const std::string& name, const YAML::Node& node) {
  return node.Mark().line >= 0 ? fmt::format("{}:{}", name, node.Mark().line + 1) : name;
}

// "commands: {auth: all-failed, mail: none}": commands as the log's
// disconnect counters name them (helo ehlo starttls auth mail rcpt data
// bdat rset noop vrfy etrn quit unknown ...).
Status command_states(Pattern& p, const YAML::Node& value) {
  static const std::vector<std::pair<std::string, CommandState>> states = {
      {"none", CommandState::none},         {"sent", CommandState::sent},
      {"ok", CommandState::ok},             {"failed", CommandState::failed},
      {"all-failed", CommandState::all_failed}, {"all-ok", CommandState::all_ok}};
  if (!value.IsMap()) return Status::error("commands: expected a mapping, e.g. {auth: all-failed}");
  for (const auto& entry : value) {
    const std::string state = entry.second.IsScalar() ? entry.second.Scalar() : "";
    auto found = std::find_if(states.begin(), states.end(),
                              [&](const auto& s) { return s.first == state; });
    if (found == states.end()) {
      return Status::error(fmt::format("commands: {}: expected none, sent, ok, failed, "
                                       "all-failed or all-ok",
                                       entry.first.as<std::string>()));
    }
    p.commands.emplace_back(entry.first.as<std::string>(), found->second);
  }
  return Status::ok();
}

// "interval_s: [50, 70]": the client's mean interval in seconds, inclusive.
Status interval_range(Pattern& p, const YAML::Node& value) {
  if (!value.IsSequence() || value.size() != 2) {
    return Status::error("interval_s: expected [low, high] in seconds, e.g. [50, 70]");
  }
  const double low = value[0].as<double>(), high = value[1].as<double>();
  if (!(low >= 0 && low <= high)) {
    return Status::error("interval_s: expected 0 <= low <= high, e.g. [50, 70]");
  }
  p.interval_s = std::pair{low, high};
  return Status::ok();
}

Status set_condition(Pattern& p, const std::string& key, const YAML::Node& value) {
  auto boolean = [&](std::optional<bool>& field) -> Status {
    if (!value.IsScalar() || (value.Scalar() != "true" && value.Scalar() != "false")) {
      return Status::error(key + ": expected true or false");
    }
    field = value.Scalar() == "true";
    return Status::ok();
  };
  auto list = [&](std::vector<std::string>& field) -> Status {
    if (!value.IsSequence()) return Status::error(key + ": expected a list, e.g. [RCPT, DATA]");
    for (const auto& item : value) field.push_back(item.as<std::string>());
    return Status::ok();
  };
  auto tristate = [&](std::optional<Tristate>& field) -> Status {
    Tristate t;
    auto one = [&t](const std::string& word) {
      if (word == "true") return t.if_true = true;
      if (word == "false") return t.if_false = true;
      if (word == "unknown") return t.if_unknown = true;
      return false;
    };
    bool good = value.IsScalar() ? one(value.Scalar()) : value.IsSequence() && value.size() > 0;
    if (value.IsSequence()) {
      for (const auto& item : value) good = good && item.IsScalar() && one(item.Scalar());
    }
    if (!good) return Status::error(key + ": expected true, false, unknown or a list of them");
    field = t;
    return Status::ok();
  };
  try {
    if (key == "retried_same_envelope") return tristate(p.retried_same_envelope);
    if (key == "null_sender") return tristate(p.null_sender);
    if (key == "commands") return command_states(p, value);
    if (key == "rejected") {
      if (!value.IsScalar() || (value.Scalar() != "temporary" && value.Scalar() != "permanent" &&
                                value.Scalar() != "none")) {
        return Status::error("rejected: expected temporary, permanent or none");
      }
      p.rejected = value.Scalar();
      return Status::ok();
    }
    if (key == "helo_refused") return boolean(p.helo_refused);
    if (key == "pipelining") return boolean(p.pipelining);
    if (key == "pregreet") return boolean(p.pregreet);
    if (key == "non_smtp") return boolean(p.non_smtp);
    if (key == "rset_at_least") return p.rset_at_least = value.as<int>(), Status::ok();
    if (key == "delivered_at_least") return p.delivered_at_least = value.as<int>(), Status::ok();
    if (key == "min_gap_s") return p.min_gap_s = value.as<double>(), Status::ok();
    if (key == "regular_interval") return boolean(p.regular_interval);
    if (key == "interval_s") return interval_range(p, value);
    if (key == "burst_at_least") return p.burst_at_least = value.as<int>(), Status::ok();
    if (key == "sessions_at_least") return p.sessions_at_least = value.as<int>(), Status::ok();
    if (key == "lost_after") return list(p.lost_after);
    if (key == "screen_verdict") return list(p.screen_verdict);
  } catch (const YAML::Exception&) {
    return Status::error(key + ": expected a number");
  }
  return Status::error(fmt::format("unknown condition \"{}\"", key));
}

Result<Pattern> parse_pattern(const YAML::Node& node, const std::string& name) {
  if (!node.IsMap()) return Status::error(where(name, node) + ": a pattern is a mapping");
  Pattern p;
  p.line = node.Mark().line + 1;
  for (const auto& entry : node) {
    const std::string key = entry.first.as<std::string>();
    const YAML::Node value = entry.second;
    if (key == "supersedes") {
      if (!value.IsSequence()) {
        return Status::error(where(name, value) + ": supersedes: expected a list of pattern names");
      }
      for (const auto& item : value) p.supersedes.push_back(item.as<std::string>());
      continue;
    }
    if (key == "when") {
      if (!value.IsMap()) return Status::error(where(name, value) + ": when: expected a mapping");
      for (const auto& condition : value) {
        if (Status set = set_condition(p, condition.first.as<std::string>(), condition.second);
            !set) {
          return Status::error(where(name, condition.first) + ": " + set.message());
        }
      }
      continue;
    }
    if (!value.IsScalar()) return Status::error(where(name, value) + ": " + key + ": expected text");
    if (key == "name") {
      p.name = value.Scalar();
    } else if (key == "title") {
      p.title = value.Scalar();
    } else if (key == "explanation") {
      p.explanation = value.Scalar();
    } else if (key == "advice") {
      p.advice = value.Scalar();
    } else if (key == "weight") {
      try {
        p.weight = value.as<double>();
      } catch (const YAML::Exception&) {
        return Status::error(where(name, value) + ": weight: expected a number");
      }
      if (p.weight < 0 || p.weight > 10) {
        return Status::error(where(name, value) + ": weight: must be between 0 and 10");
      }
    } else if (key == "stages") {
      p.stages_text = value.Scalar();
      auto compiled = compile_byte_regex(p.stages_text);
      if (!compiled) {
        return Status::error(fmt::format("{}: stages: bad regular expression \"{}\": {}",
                                         where(name, value), p.stages_text, compiled.message()));
      }
      p.stages = std::move(compiled).value();
    } else {
      return Status::error(fmt::format(
          "{}: unknown key \"{}\" (name, title, stages, when, weight, supersedes, explanation, advice)",
          where(name, entry.first), key));
    }
  }
  for (auto [field, label] : {std::pair{&p.name, "name"}, std::pair{&p.title, "title"},
                              std::pair{&p.explanation, "explanation"},
                              std::pair{&p.advice, "advice"}}) {
    if (field->empty()) return Status::error(fmt::format("{}: pattern without {}", where(name, node), label));
  }
  if (!p.stages) return Status::error(fmt::format("{}: pattern \"{}\" has no stages", where(name, node), p.name));
  return p;
}

bool contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

bool command_holds(const SessionFacts& f, const std::string& name, CommandState state) {
  const int ok = succeeded(f.log_counters, name).value_or(0);
  const int tried = attempted(f.log_counters, name).value_or(0);
  switch (state) {
    case CommandState::none: return tried == 0;
    case CommandState::sent: return tried > 0;
    case CommandState::ok: return ok > 0;
    case CommandState::failed: return tried > ok;
    case CommandState::all_failed: return tried > 0 && ok == 0;
    case CommandState::all_ok: return tried > 0 && ok == tried;
  }
  return false;
}

}  // namespace

Result<PatternSet> parse_patterns(const std::string& yaml, const std::string& name) {
  try {
    const YAML::Node root = load_yaml_strict(yaml);
    if (!root.IsMap() || !root["patterns"] || !root["patterns"].IsSequence()) {
      return Status::error(name + ": expected \"patterns:\" followed by a list");
    }
    PatternSet set;
    for (const auto& node : root["patterns"]) {
      auto pattern = parse_pattern(node, name);
      if (!pattern) return pattern.status();
      for (const auto& known : set.patterns) {
        if (known.name == pattern.value().name) {
          return Status::error(fmt::format("{}: pattern name \"{}\" used twice",
                                           where(name, node), known.name));
        }
      }
      set.patterns.push_back(std::move(pattern).value());
    }
    for (const auto& p : set.patterns) {
      for (const auto& other : p.supersedes) {
        if (std::none_of(set.patterns.begin(), set.patterns.end(),
                         [&](const Pattern& q) { return q.name == other; })) {
          return Status::error(fmt::format("{}:{}: supersedes: no pattern named \"{}\"", name,
                                           p.line, other));
        }
      }
    }
    return set;
  } catch (const YAML::Exception& e) {
    return Status::error(fmt::format("{}:{}: {}", name, e.mark.line + 1, e.msg));
  }
}

Result<PatternSet> load_patterns(const std::string& path) {
  std::ifstream file(path);
  if (!file) return Status::error(path + ": cannot read the file");
  std::ostringstream text;
  text << file.rdbuf();
  return parse_patterns(text.str(), path);
}

namespace {

bool timing_holds(const Pattern& p, const ClientTiming& t) {
  if (p.regular_interval && *p.regular_interval != t.regular_every_s.has_value()) return false;
  if (p.interval_s && (!t.mean_interval_s || *t.mean_interval_s < p.interval_s->first ||
                       *t.mean_interval_s > p.interval_s->second)) {
    return false;
  }
  if (p.burst_at_least && t.burst < *p.burst_at_least) return false;
  if (p.sessions_at_least && t.sessions < *p.sessions_at_least) return false;
  return true;
}

}  // namespace

bool matches(const Pattern& p, const SessionFacts& f, const ClientTiming& timing) {
  if (!timing_holds(p, timing)) return false;
  if (!re2::RE2::PartialMatch(f.stages, *p.stages)) return false;
  if (p.retried_same_envelope && !p.retried_same_envelope->accepts(f.retried_same_envelope)) {
    return false;
  }
  if (p.null_sender && !p.null_sender->accepts(f.null_sender)) return false;
  if (!p.commands.empty() && f.log_counters.empty()) return false;
  for (const auto& [name, state] : p.commands) {
    if (!command_holds(f, name, state)) return false;
  }
  if (p.rejected) {
    const std::string& r = *p.rejected;
    if (r == "none" && f.temp_rejects + f.perm_rejects > 0) return false;
    if (r == "temporary" && (f.temp_rejects == 0 || f.perm_rejects > 0)) return false;
    if (r == "permanent" && f.perm_rejects == 0) return false;
  }
  if (p.helo_refused && *p.helo_refused != f.helo_refused) return false;
  if (p.pipelining && *p.pipelining != f.pipelining) return false;
  if (p.pregreet && *p.pregreet != f.pregreet) return false;
  if (p.non_smtp && *p.non_smtp != f.non_smtp) return false;
  if (p.rset_at_least && f.rset.value_or(0) < *p.rset_at_least) return false;
  if (p.delivered_at_least && f.delivered < *p.delivered_at_least) return false;
  if (p.min_gap_s && f.max_gap_s < *p.min_gap_s) return false;
  if (!p.lost_after.empty() && !contains(p.lost_after, f.lost_after)) return false;
  if (!p.screen_verdict.empty() &&
      std::none_of(f.screen_verdicts.begin(), f.screen_verdicts.end(),
                   [&](const std::string& v) { return contains(p.screen_verdict, v); })) {
    return false;
  }
  return true;
}

std::vector<const Pattern*> match_all(const PatternSet& set, const SessionFacts& facts,
                                      const ClientTiming& timing) {
  std::vector<const Pattern*> out;
  for (const auto& p : set.patterns) {
    if (matches(p, facts, timing)) out.push_back(&p);
  }
  std::vector<std::string> superseded;
  for (const Pattern* p : out) superseded.insert(superseded.end(), p->supersedes.begin(), p->supersedes.end());
  if (superseded.empty()) return out;
  std::erase_if(out, [&](const Pattern* p) { return contains(superseded, p->name); });
  return out;
}

}  // namespace smtpscope::analysis
