#include "discover_command.h"

#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "database_access.h"
#include "duration.h"
#include "session_reader.h"
#include "shape_groups.h"
#include "text_escape.h"
#include "timeline_text.h"

namespace smtpscope::cli {

namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

// The unnamed sessions, as members for the grouping, and the sessions
// they came from (same order).
struct Unnamed {
  std::vector<analysis::ShapeMember> members;
  std::vector<const SessionRecord*> sessions;
  std::size_t analysed = 0;
};

std::string timing_class(const analysis::ClientTiming& timing) {
  if (timing.regular_every_s) return "regular";
  return timing.burst >= analysis::burst_min ? "burst" : "";
}

Unnamed unnamed_sessions(const std::vector<ClientSummary>& clients) {
  Unnamed out;
  for (const auto& client : clients) {
    const std::string timing = timing_class(client.timing);
    for (const auto& s : client.sessions) {
      ++out.analysed;
      if (!s.patterns.empty()) continue;
      out.members.push_back({&s.facts, client.client_addr, timing});
      out.sessions.push_back(s.session);
    }
  }
  return out;
}

std::vector<analysis::ShapeGroup> shown_groups(const Unnamed& unnamed,
                                               const DiscoverOptions& options) {
  auto groups = analysis::group_shapes(unnamed.members, options.min_sessions);
  if (groups.size() > options.top) groups.resize(options.top);
  return groups;
}

std::string entry_name(std::size_t rank) { return fmt::format("unnamed-shape-{}", rank); }

std::string indented(const std::string& text, const std::string& indent) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    const auto end = text.find('\n', start);
    const auto line =
        text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    out += line.empty() ? "\n" : indent + line + "\n";
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

Result<SessionFilter> filter_for(const DiscoverOptions& options) {
  SessionFilter filter;
  filter.limit = options.limit;
  if (!options.since.empty()) {
    auto window = parse_duration_us(options.since);
    if (!window) return window.status().context("--since");
    const auto now = std::chrono::duration_cast<std::chrono::microseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    filter.since_us = now - window.value();
  }
  return filter;
}

}  // namespace

std::string render_discover_text(const std::vector<ClientSummary>& clients,
                                 const DiscoverOptions& options) {
  const Unnamed unnamed = unnamed_sessions(clients);
  const auto groups = shown_groups(unnamed, options);
  std::string out = fmt::format(
      "{} of {} sessions are named by no pattern; {} group(s) of at least {} shown, largest "
      "first\n",
      unnamed.members.size(), unnamed.analysed, groups.size(), options.min_sessions);
  for (std::size_t rank = 1; rank <= groups.size(); ++rank) {
    const auto& g = groups[rank - 1];
    const SessionRecord& example = *unnamed.sessions[g.members.front()];
    out += fmt::format("\n{}. {} sessions, {} clients: {}\n", rank, g.members.size(), g.clients,
                       g.shape);
    out += fmt::format("   commands: {}  HELO: {}  timing: {}\n",
                       g.commands.empty() ? "(no log)" : printable(g.commands), printable(g.helo),
                       g.timing.empty() ? "-" : g.timing);
    out +=
        fmt::format("   example: session {} of {}\n", example.id, printable(example.client_addr));
    out += indented(render_timelines_text({example}), "     ");
    out += "   pattern entry (rename it, explain it, add it under patterns:):\n";
    out += indented(analysis::pattern_entry(g, unnamed.members, entry_name(rank)), "   ");
  }
  if (!groups.empty()) {
    out +=
        "\nTo keep an entry: paste it under `patterns:` in a copy of conf/patterns.yaml, "
        "give it a name, explanation and advice, and pass the file with --patterns.\n";
  }
  return out;
}

std::string render_discover_json(const std::vector<ClientSummary>& clients,
                                 const DiscoverOptions& options) {
  using nlohmann::json;
  const Unnamed unnamed = unnamed_sessions(clients);
  const auto groups = shown_groups(unnamed, options);
  json list = json::array();
  for (std::size_t rank = 1; rank <= groups.size(); ++rank) {
    const auto& g = groups[rank - 1];
    const SessionRecord& example = *unnamed.sessions[g.members.front()];
    json ids = json::array();
    for (std::size_t i : g.members) ids.push_back(unnamed.sessions[i]->id);
    list.push_back(
        {{"rank", rank},
         {"shape", g.shape},
         {"commands", g.commands},
         {"helo", g.helo},
         {"timing", g.timing},
         {"sessions", g.members.size()},
         {"clients", g.clients},
         {"session_ids", ids},
         {"example_session", example.id},
         {"example_client", example.client_addr},
         {"example_stages", unnamed.members[g.members.front()].facts->stages},
         {"stages_regex", g.stages_regex},
         {"pattern_name", entry_name(rank)},
         {"pattern_yaml", analysis::pattern_entry(g, unnamed.members, entry_name(rank))}});
  }
  json out = {{"sessions", unnamed.analysed},
              {"unnamed_sessions", unnamed.members.size()},
              {"groups", list}};
  return out.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

int run_discover(const DiscoverOptions& options) {
  auto patterns =
      options.patterns_file.empty()
          ? analysis::parse_patterns(analysis::builtin_patterns_yaml(), "built-in patterns")
          : analysis::load_patterns(options.patterns_file);
  if (!patterns) {
    std::cerr << "smtpscope: " << patterns.message() << '\n';
    return exit_usage;
  }
  auto filter = filter_for(options);
  if (!filter) {
    std::cerr << "smtpscope: " << filter.message() << '\n';
    return exit_usage;
  }
  auto db = open_database_at(options.database, Access::read);
  auto sessions = db ? read_sessions(*db.value(), filter.value())
                     : Result<std::vector<SessionRecord>>(db.status());
  if (!sessions) {
    std::cerr << "smtpscope: " << sessions.message() << '\n';
    return exit_failure;
  }
  if (sessions.value().size() >= options.limit) {
    std::cerr << "smtpscope: note: analysed the most recent " << options.limit
              << " sessions only (use --limit or --since)\n";
  }
  const auto clients = by_client(analyse(sessions.value(), patterns.value()));
  std::cout << (options.format == "json" ? render_discover_json(clients, options)
                                         : render_discover_text(clients, options));
  return std::cout ? 0 : exit_failure;
}

}  // namespace smtpscope::cli
