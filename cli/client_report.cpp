#include "client_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <nlohmann/json.hpp>

#include "text_escape.h"
#include "timeline_text.h"

namespace smtpscope::cli {
namespace {

using nlohmann::json;

double abort_rate(const ClientSummary& c) {
  return c.transactions > 0 ? static_cast<double>(c.aborted) / static_cast<double>(c.transactions) : 0.0;
}

std::string quirk_list(const std::vector<std::string>& quirks) {
  return quirks.empty() ? "-" : fmt::format("{}", fmt::join(quirks, ","));
}

json timing_json(const analysis::ClientTiming& t) {
  return {{"regular_every_s", t.regular_every_s ? json(*t.regular_every_s) : json()},
          {"burst", t.burst},
          {"burst_window_s", t.burst_window_s},
          {"text", t.describe()}};
}

json anomaly_json(const analysis::Anomaly& a) {
  json reasons = json::array();
  for (const auto& r : a.reasons) reasons.push_back({{"weight", r.weight}, {"reason", r.text}});
  return {{"score", a.score}, {"reasons", reasons}};
}

// The fields the clients list and the report share for one client.
json client_fields(const ClientSummary& c) {
  json fingerprints = json::array();
  for (const auto& f : c.fingerprints) fingerprints.push_back(f.id);
  json hosts = json::array();
  for (const auto& h : c.hosts) hosts.push_back({{"host", h.host}, {"sessions", h.sessions}});
  return {{"client", c.client_addr},
          {"sessions", c.session_count},
          {"transactions", c.transactions},
          {"aborted", c.aborted},
          {"delivered", c.delivered},
          {"abort_rate", abort_rate(c)},
          {"helo_quirks", c.quirks},
          {"fingerprints", fingerprints},
          {"hosts", hosts},
          {"timing", timing_json(c.timing)},
          {"anomaly", anomaly_json(c.anomaly)}};
}

std::string top_pattern(const ClientSummary& c) {
  return c.pattern_counts.empty() ? "-" : c.pattern_counts.front().first->name;
}

}  // namespace

void add_missing_sessions(std::vector<SessionRecord>& population, std::vector<SessionRecord> own) {
  std::set<std::int64_t> known;
  for (const auto& s : population) known.insert(s.id);
  bool added = false;
  for (auto& s : own) {
    if (known.insert(s.id).second) {
      population.push_back(std::move(s));
      added = true;
    }
  }
  if (!added) return;
  std::stable_sort(population.begin(), population.end(), [](const auto& a, const auto& b) {
    return a.connect_us != b.connect_us ? a.connect_us < b.connect_us : a.id < b.id;
  });
}

std::vector<AnalysedSession> analyse(const std::vector<SessionRecord>& sessions,
                                     const analysis::PatternSet& patterns) {
  // Each client's timing up to and including each session, in time order.
  std::vector<std::size_t> order(sessions.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return sessions[a].connect_us < sessions[b].connect_us;
  });
  std::map<std::string, analysis::TimingSums> sums;
  std::vector<analysis::ClientTiming> timing(sessions.size());
  for (std::size_t i : order) {
    analysis::TimingSums& client = sums[sessions[i].client_addr];
    client.add(sessions[i].connect_us);
    timing[i] = client.timing();
  }
  std::vector<AnalysedSession> out;
  out.reserve(sessions.size());
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    const auto& s = sessions[i];
    AnalysedSession a{&s, analysis::facts_of(s), {}, {}};
    a.patterns = analysis::match_all(patterns, a.facts, timing[i]);
    a.fingerprint = analysis::fingerprint_of(s, a.facts);
    out.push_back(std::move(a));
  }
  return out;
}

std::vector<ClientSummary> by_client(std::vector<AnalysedSession> sessions) {
  std::map<std::string, ClientSummary> clients;
  for (auto& a : sessions) {
    ClientSummary& c = clients[a.session->client_addr];
    c.client_addr = a.session->client_addr;
    c.session_count += 1;
    c.transactions += a.facts.transactions;
    c.aborted += a.facts.aborted;
    c.delivered += a.facts.delivered;
    for (auto q : a.facts.quirks) {
      const std::string name(analysis::to_string(q));
      if (std::find(c.quirks.begin(), c.quirks.end(), name) == c.quirks.end()) {
        c.quirks.push_back(name);
      }
    }
    if (!a.patterns.empty()) {
      auto found = std::find_if(c.pattern_counts.begin(), c.pattern_counts.end(),
                                [&](const auto& pc) { return pc.first == a.patterns.front(); });
      if (found == c.pattern_counts.end()) {
        c.pattern_counts.emplace_back(a.patterns.front(), 1);
      } else {
        found->second += 1;
      }
    }
    auto use = std::find_if(c.fingerprints.begin(), c.fingerprints.end(),
                            [&](const FingerprintUse& f) { return f.id == a.fingerprint.id; });
    if (use == c.fingerprints.end()) {
      c.fingerprints.push_back({a.fingerprint.id, 1, a.fingerprint.readable()});
    } else {
      use->sessions += 1;
      // The least of its sessions' features, as the stored analysis keeps.
      use->features = std::min(use->features, a.fingerprint.readable());
    }
    c.sessions.push_back(std::move(a));
  }
  std::vector<ClientSummary> out;
  std::vector<analysis::ClientSessions> scored;
  std::map<std::string, double> weights;
  for (auto& [addr, c] : clients) {
    std::stable_sort(c.pattern_counts.begin(), c.pattern_counts.end(),
                     [](const auto& a, const auto& b) { return a.second > b.second; });
    std::stable_sort(c.fingerprints.begin(), c.fingerprints.end(),
                     [](const auto& a, const auto& b) { return a.sessions > b.sessions; });
    std::vector<std::int64_t> connects;
    for (const auto& a : c.sessions) connects.push_back(a.session->connect_us);
    c.timing = analysis::client_timing(std::move(connects));
    analysis::ClientSessions input{addr, {}};
    for (const auto& a : c.sessions) {
      analysis::ScoredSession s{a.fingerprint.id, {}, {}, 1, a.session->connect_us};
      for (auto q : a.facts.quirks) s.quirks.emplace_back(analysis::to_string(q));
      for (const auto* p : a.patterns) {
        s.patterns.push_back(p->name);
        weights[p->name] = p->weight;
      }
      input.sessions.push_back(std::move(s));
    }
    scored.push_back(std::move(input));
    out.push_back(std::move(c));
  }
  rank_clients(out, scored, weights);
  return out;
}

void rank_clients(std::vector<ClientSummary>& clients,
                  const std::vector<analysis::ClientSessions>& scored,
                  const std::map<std::string, double>& pattern_weights) {
  auto anomalies = analysis::score_clients(scored, pattern_weights);
  for (auto& c : clients) c.anomaly = std::move(anomalies[c.client_addr]);
  // The most anomalous first; then the busiest, those whose transactions
  // fail most, and by address.
  std::stable_sort(clients.begin(), clients.end(), [](const ClientSummary& a, const ClientSummary& b) {
    if (a.anomaly.score != b.anomaly.score) return a.anomaly.score > b.anomaly.score;
    if (a.session_count != b.session_count) return a.session_count > b.session_count;
    if (abort_rate(a) != abort_rate(b)) return abort_rate(a) > abort_rate(b);
    return a.client_addr < b.client_addr;
  });
}

namespace {

// True when the clients' sessions were recorded on more than one host.
bool several_hosts(const std::vector<ClientSummary>& clients) {
  std::set<std::string> seen;
  for (const auto& c : clients) {
    for (const auto& h : c.hosts) {
      seen.insert(h.host);
      if (seen.size() > 1) return true;
    }
  }
  return false;
}

// The host of most of its sessions, and how many others it was seen on.
std::string host_list(const ClientSummary& c) {
  if (c.hosts.empty()) return "-";
  const std::string first = printable(c.hosts.front().host, 32);
  return c.hosts.size() == 1 ? first : fmt::format("{} +{}", first, c.hosts.size() - 1);
}

}  // namespace

std::string render_clients_text(const std::vector<ClientSummary>& clients) {
  const bool fleet = several_hosts(clients);
  std::string out = fmt::format("{:<40} {:>6} {:>8} {:>6} {:>8}  {:<12} {:<28} {}{}\n", "CLIENT",
                                "SCORE", "SESSIONS", "TXNS", "ABORTED", "FINGERPRINT",
                                "HELO QUIRKS", fleet ? fmt::format("{:<24} ", "TOP PATTERN") : "",
                                fleet ? "HOSTS" : "TOP PATTERN");
  for (const auto& c : clients) {
    const std::string fingerprint = c.fingerprints.empty() ? "-"
        : c.fingerprints.front().id + (c.fingerprints.size() > 1 ? "*" : "");
    out += fmt::format("{:<40} {:>6.2f} {:>8} {:>6} {:>7.0f}%  {:<12} {:<28} {}\n",
                       printable(c.client_addr, 40), c.anomaly.score, c.session_count,
                       c.transactions, abort_rate(c) * 100, fingerprint, quirk_list(c.quirks),
                       fleet ? fmt::format("{:<24} {}", top_pattern(c), host_list(c))
                             : top_pattern(c));
  }
  out += "(fingerprint: the one of most of its sessions; * it has more than one";
  out += fleet ? "; hosts: the MTA of most of its sessions, +N others)\n" : ")\n";
  return out;
}

std::string render_clients_json(const std::vector<ClientSummary>& clients) {
  json list = json::array();
  for (const auto& c : clients) {
    json patterns = json::array();
    for (const auto& [p, n] : c.pattern_counts) {
      patterns.push_back({{"name", p->name}, {"sessions", n}, {"weight", p->weight}});
    }
    json entry = client_fields(c);
    entry["patterns"] = patterns;
    list.push_back(std::move(entry));
  }
  return json{{"clients", list}}.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string render_report_text(const ClientSummary& c) {
  std::string out = fmt::format(
      "Client {}: {} session{}, {} transaction{} ({} delivered, {} aborted, {:.0f}% aborted)\n",
      printable(c.client_addr), c.session_count, c.session_count == 1 ? "" : "s",
      c.transactions, c.transactions == 1 ? "" : "s", c.delivered, c.aborted,
      abort_rate(c) * 100);
  out += fmt::format("Anomaly score: {:.2f}\n", c.anomaly.score);
  for (const auto& r : c.anomaly.reasons) {
    out += fmt::format("  {:5.2f}  {}\n", r.weight, printable(r.text));
  }
  out += fmt::format("HELO quirks: {}\n", quirk_list(c.quirks));
  if (c.hosts.size() > 1) {
    std::vector<std::string> hosts;
    for (const auto& h : c.hosts) hosts.push_back(fmt::format("{} ({})", printable(h.host), h.sessions));
    out += fmt::format("Hosts: {}\n", fmt::join(hosts, ", "));
  }
  if (const std::string timing = c.timing.describe(); !timing.empty()) {
    out += fmt::format("Timing: {}\n", timing);
  }
  for (const auto& f : c.fingerprints) {
    out += fmt::format("Fingerprint {} ({} session{}): {}\n", f.id, f.sessions,
                       f.sessions == 1 ? "" : "s", printable(f.features));
  }
  if (c.fingerprints.size() > 1) {
    out += fmt::format("It used {} fingerprints: the client software or what sits in front of it "
                       "changed, or several programs share its address.\n",
                       c.fingerprints.size());
  }
  if (c.pattern_counts.empty()) {
    out += "Patterns: none matched; its sessions look ordinary.\n";
  } else {
    out += "Patterns:\n";
    for (const auto& [p, n] : c.pattern_counts) {
      out += fmt::format("  {:<34} {} of {} sessions   {}\n", p->name, n, c.session_count,
                         p->title);
    }
    const analysis::Pattern& top = *c.pattern_counts.front().first;
    out += fmt::format("\nMost likely: {}\n  {}\n  What to do: {}\n", top.title, top.explanation,
                       top.advice);
  }
  if (c.sessions.size() < static_cast<std::size_t>(c.session_count)) {
    out += fmt::format("\nIts {} most recent sessions of {} (--limit shows more):", c.sessions.size(),
                       c.session_count);
  }
  out += "\nSessions (stage string: C connect, H HELO, M MAIL, R/J RCPT accepted/rejected, "
         "D DATA, E queued, A aborted; Q QUIT, L lost, T timeout, Z closed):\n";
  for (const auto& a : c.sessions) {
    std::vector<std::string> names;
    for (const auto* p : a.patterns) names.push_back(p->name);
    out += fmt::format("\n  [{}]  {}  (fingerprint {})\n", a.facts.stages,
                       names.empty() ? "no pattern" : fmt::format("{}", fmt::join(names, ", ")),
                       a.fingerprint.id);
    for (const auto& note : a.facts.notes) out += "  note: " + note + "\n";
    std::string timeline = render_timelines_text({*a.session});
    for (std::size_t start = 0; start < timeline.size();) {
      const std::size_t end = timeline.find('\n', start);
      out += "  " + timeline.substr(start, end - start + 1);
      start = end == std::string::npos ? timeline.size() : end + 1;
    }
  }
  return out;
}

std::string render_report_json(const ClientSummary& c) {
  json sessions = json::array();
  for (const auto& a : c.sessions) {
    json names = json::array();
    for (const auto* p : a.patterns) names.push_back(p->name);
    json counters = json::object();
    for (const auto& [k, v] : a.facts.log_counters) counters[k] = v;
    std::vector<std::string> quirks;
    for (auto q : a.facts.quirks) quirks.emplace_back(analysis::to_string(q));
    json features = json::object();
    for (const auto& [name, value] : a.fingerprint.features) features[name] = value;
    sessions.push_back({{"id", a.session->id},
                        {"fingerprint", {{"id", a.fingerprint.id}, {"features", features}}},
                        {"connect_us", a.session->connect_us},
                        {"client_port", a.session->client_port ? json(*a.session->client_port) : json()},
                        {"stages", a.facts.stages},
                        {"patterns", names},
                        {"helos", a.facts.helos},
                        {"helo_quirks", quirks},
                        {"end", a.facts.end},
                        {"lost_after", a.facts.lost_after},
                        {"transactions", a.facts.transactions},
                        {"senders", a.facts.senders},
                        // null when the sensors could not tell (the log alone)
                        {"null_sender", a.facts.null_sender ? json(*a.facts.null_sender) : json()},
                        {"log_counters", counters},
                        {"notes", a.facts.notes}});
  }
  json patterns = json::array();
  for (const auto& [p, n] : c.pattern_counts) {
    patterns.push_back({{"name", p->name}, {"title", p->title}, {"sessions", n},
                        {"explanation", p->explanation}, {"advice", p->advice}});
  }
  json report = client_fields(c);
  report["patterns"] = patterns;
  report["session_details"] = sessions;
  return report.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace smtpscope::cli

namespace smtpscope::cli {

std::string render_correlation_text(const std::vector<analysis::Association>& associations,
                                    const std::vector<ClientSummary>& clients) {
  std::string out = fmt::format("{:<12} {:<20} {:<34} {:>12} {:>7} {:>6} {:>15}  {}\n", "KIND",
                                "GROUP", "PATTERN", "IN GROUP", "REST", "LIFT", "95% INTERVAL",
                                "SIGNIFICANT");
  std::vector<std::string> legend;
  for (const auto& a : associations) {
    out += fmt::format("{:<12} {:<20} {:<34} {:>4}/{:<4} {:>3.0f}% {:>6.1f}% {:>6} {:>6.1f}-{:<6.1f}%  {}\n",
                       a.kind, printable(a.group, 20), a.pattern, a.group_with_pattern,
                       a.group_sessions, a.rate * 100, a.rest_rate * 100,
                       a.lift > 0 ? fmt::format("{:.1f}", a.lift) : "-", a.low * 100,
                       a.high * 100, a.significant ? "yes" : "no");
    if (a.kind == "fingerprint" &&
        std::find(legend.begin(), legend.end(), a.group) == legend.end()) {
      legend.push_back(a.group);
    }
  }
  if (associations.empty()) out += "no pattern occurs in the recorded sessions\n";
  out += "\nFingerprints:\n";
  for (const std::string& id : legend) {
    for (const auto& c : clients) {
      auto found = std::find_if(c.fingerprints.begin(), c.fingerprints.end(),
                                [&](const FingerprintUse& f) { return f.id == id; });
      if (found != c.fingerprints.end()) {
        out += fmt::format("  {}  {}\n", id, printable(found->features));
        break;
      }
    }
  }
  return out;
}

std::string render_correlation_json(const std::vector<analysis::Association>& associations) {
  json list = json::array();
  for (const auto& a : associations) {
    list.push_back({{"kind", a.kind}, {"group", a.group}, {"pattern", a.pattern},
                    {"group_sessions", a.group_sessions}, {"group_with_pattern", a.group_with_pattern},
                    {"rest_sessions", a.rest_sessions}, {"rest_with_pattern", a.rest_with_pattern},
                    {"rate", a.rate}, {"rest_rate", a.rest_rate}, {"lift", a.lift},
                    {"interval", {a.low, a.high}}, {"significant", a.significant}});
  }
  return json{{"associations", list}}.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

}  // namespace smtpscope::cli
