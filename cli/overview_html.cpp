#include "overview_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "html_page.h"
#include "pattern_timeline.h"
#include "text_escape.h"
#include "time_view.h"

namespace smtpscope::cli {
namespace {

std::string h(std::string_view raw, std::size_t max = 256) { return html_text(raw, max); }

// The overview's own rules, after html_page_head's base ones.
constexpr std::string_view style = R"(
td.n{text-align:right;font-variant-numeric:tabular-nums}
code{font-family:ui-monospace,monospace;background:#f4f5f8;padding:0 .2em;overflow-wrap:anywhere}
.advice{border-left:4px solid #e0a800;background:#fff7e0;padding:.4em 1em;margin:.6em 0}
.advice h3{margin:.2em 0;font-size:1em} .advice p{margin:.3em 0} .yes{color:#b02a37;font-weight:bold}
svg{display:block;margin:.4em 0;max-width:100%;height:auto} a{color:#1f5fbf} code.addr{white-space:nowrap}
)";

double abort_rate(const ClientSummary& c) {
  return c.transactions > 0 ? static_cast<double>(c.aborted) / static_cast<double>(c.transactions) : 0.0;
}

struct PatternUse {
  const analysis::Pattern* pattern;
  int sessions = 0;
  int clients = 0;
};

// The patterns that name sessions, most sessions first.
std::vector<PatternUse> patterns_present(const std::vector<ClientSummary>& clients) {
  std::vector<PatternUse> uses;
  for (const auto& c : clients) {
    for (const auto& [p, n] : c.pattern_counts) {
      auto found = std::find_if(uses.begin(), uses.end(),
                                [p = p](const PatternUse& u) { return u.pattern == p; });
      if (found == uses.end()) {
        uses.push_back({p, n, 1});
      } else {
        found->sessions += n;
        found->clients += 1;
      }
    }
  }
  std::stable_sort(uses.begin(), uses.end(),
                   [](const PatternUse& a, const PatternUse& b) { return a.sessions > b.sessions; });
  return uses;
}

std::string summary(const std::vector<ClientSummary>& clients, const PatternTimeline& t) {
  if (t.sessions == 0) return "<p>No sessions recorded.</p>\n";
  return fmt::format("<p class=\"muted\">{} client{}, {} session{}, from {} to {}.</p>\n",
                     clients.size(), clients.size() == 1 ? "" : "s", t.sessions,
                     t.sessions == 1 ? "" : "s", html_escape(utc_text(t.first_us)),
                     html_escape(utc_text(t.last_us)));
}

std::string timeline_section(const PatternTimeline& t) {
  std::string out = "<h2>Patterns over time</h2>\n";
  if (t.sessions_with_pattern == 0) return out + "<p>No session matched a pattern.</p>\n";
  out += fmt::format("<p class=\"muted\">{} of {} sessions named by a pattern, by the time they "
                     "connected.</p>\n",
                     t.sessions_with_pattern, t.sessions);
  return out + pattern_timeline_svg(t) + "\n";
}

std::string advice_section(const std::vector<PatternUse>& uses) {
  std::string out = "<h2>What to do</h2>\n";
  if (uses.empty()) return out + "<p>No pattern matched; the sessions look ordinary.</p>\n";
  for (const auto& u : uses) {
    out += fmt::format("<div class=\"advice\"><h3><code>{}</code> {}</h3><p class=\"muted\">{} "
                       "session{} of {} client{}</p><p>{}</p><p><strong>What to do:</strong> "
                       "{}</p></div>\n",
                       h(u.pattern->name), h(u.pattern->title, 300), u.sessions,
                       u.sessions == 1 ? "" : "s", u.clients, u.clients == 1 ? "" : "s",
                       h(u.pattern->explanation, 4000), h(u.pattern->advice, 4000));
  }
  return out;
}

std::string client_row(std::size_t rank, const ClientSummary& c, bool link) {
  std::string patterns;
  for (const auto& [p, n] : c.pattern_counts) {
    patterns += fmt::format("{}<code>{}</code>&nbsp;{}", patterns.empty() ? "" : " ", h(p->name), n);
  }
  std::string fingerprints;  // the id, its features on hover
  for (const auto& f : c.fingerprints) {
    fingerprints += fmt::format("{}<code title=\"{}\">{}</code>", fingerprints.empty() ? "" : " ",
                                h(f.features, 600), h(f.id, 40));
  }
  const std::string name = link ? fmt::format("<a href=\"{}\"><code class=\"addr\">{}</code></a>",
                                              html_escape(client_page_name(c.client_addr)),
                                              h(c.client_addr, 64))
                                : fmt::format("<code class=\"addr\">{}</code>", h(c.client_addr, 64));
  return fmt::format("<tr><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{:.2f}</td>"
                     "<td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{:.0f}%</td>"
                     "<td>{}</td><td>{}</td><td>{}{}</td></tr>\n",
                     rank, name, c.anomaly.score, c.session_count, c.transactions,
                     abort_rate(c) * 100, patterns.empty() ? "-" : patterns,
                     c.quirks.empty() ? "-" : h(fmt::format("{}", fmt::join(c.quirks, ", "))),
                     fingerprints, c.fingerprints.size() > 1 ? " (several)" : "");
}

std::string clients_section(const std::vector<ClientSummary>& clients,
                            const OverviewOptions& options) {
  const std::size_t shown = std::min(options.top_clients, clients.size());
  std::string out = fmt::format(
      "<h2>Clients</h2>\n<p class=\"muted\">The {} most anomalous of {} client{}{}.{}</p>\n",
      shown, clients.size(), clients.size() == 1 ? "" : "s",
      shown < clients.size() ? " (--top shows more)" : "",
      options.link_clients ? " Each links to its report." : "");
  out += "<table><tr><th>#</th><th>client</th><th>score</th><th>sessions</th>"
         "<th>transactions</th><th>aborted</th><th>patterns (sessions)</th><th>HELO quirks</th>"
         "<th>fingerprints</th></tr>\n";
  for (std::size_t i = 0; i < shown; ++i) {
    out += client_row(i + 1, clients[i], options.link_clients);
  }
  return out + "</table>\n";
}

// Readable features of the fingerprints the table names.
std::string fingerprint_legend(const std::vector<ClientSummary>& clients,
                               const std::vector<std::string>& ids) {
  std::string out;
  std::set<std::string> wanted(ids.begin(), ids.end());
  std::map<std::string, std::string> readable;
  for (const auto& c : clients) {
    for (const auto& f : c.fingerprints) {
      if (wanted.contains(f.id) && !readable.contains(f.id)) readable[f.id] = f.features;
    }
  }
  for (const auto& id : ids) {
    out += fmt::format("<tr><td><code>{}</code></td><td>{}</td></tr>\n", h(id, 40),
                       h(readable[id], 1000));
  }
  return out.empty() ? "" : "<table><tr><th>fingerprint</th><th>features</th></tr>\n" + out +
                                "</table>\n";
}

std::string correlation_section(const std::vector<ClientSummary>& clients,
                                const std::vector<analysis::Association>& associations,
                                const OverviewOptions& options) {
  std::string out = "<h2>Fingerprints and HELO quirks with their patterns</h2>\n";
  if (associations.empty()) return out + "<p>No pattern occurs in the sessions.</p>\n";
  const std::size_t shown = std::min(options.top_associations, associations.size());
  out += fmt::format(
      "<p class=\"muted\">How often a pattern occurs among the sessions of a fingerprint or HELO "
      "quirk, against the rest (lift), with a 95% Wilson interval; significant when the "
      "interval lies above the rest's rate. The {} strongest of {} pairs.</p>\n",
      shown, associations.size());
  out += "<table><tr><th>kind</th><th>group</th><th>pattern</th><th>in group</th><th>rest</th>"
         "<th>lift</th><th>95% interval</th><th>significant</th></tr>\n";
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < shown; ++i) {
    const auto& a = associations[i];
    if (a.kind == "fingerprint" && std::find(ids.begin(), ids.end(), a.group) == ids.end()) {
      ids.push_back(a.group);
    }
    out += fmt::format(
        "<tr><td>{}</td><td><code>{}</code></td><td><code>{}</code></td>"
        "<td class=\"n\">{}/{} ({:.0f}%)</td><td class=\"n\">{:.1f}%</td><td class=\"n\">{}</td>"
        "<td class=\"n\">{:.1f}&ndash;{:.1f}%</td><td{}>{}</td></tr>\n",
        h(a.kind, 20), h(a.group, 60), h(a.pattern, 100), a.group_with_pattern, a.group_sessions,
        a.rate * 100, a.rest_rate * 100, a.lift > 0 ? fmt::format("{:.1f}", a.lift) : "-",
        a.low * 100, a.high * 100, a.significant ? " class=\"yes\"" : "",
        a.significant ? "yes" : "no");
  }
  return out + "</table>\n" + fingerprint_legend(clients, ids);
}

}  // namespace

std::string client_page_name(const std::string& client_addr) {
  std::string name;
  bool changed = false;
  for (const char ch : client_addr.substr(0, 100)) {
    const bool keep = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                      (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == '-';
    name += keep ? ch : '_';
    changed = changed || (!keep && ch != ':');
  }
  if (changed || client_addr.size() > 100 || name.empty() || name.front() == '.') {
    std::uint32_t hash = 2166136261u;  // FNV-1a over the whole original
    for (const unsigned char ch : client_addr) hash = (hash ^ ch) * 16777619u;
    name += fmt::format("-{:08x}", hash);
  }
  return "client-" + name + ".html";
}

std::string render_overview_html(const std::vector<ClientSummary>& clients,
                                 const std::vector<analysis::Association>& associations,
                                 const std::vector<TimedCount>& sessions_over_time,
                                 const OverviewOptions& options) {
  std::string out = html_page_head("smtpscope overview", style) + "<h1>smtpscope overview</h1>\n";
  const std::vector<PatternUse> uses = patterns_present(clients);
  const PatternTimeline timeline = pattern_timeline(sessions_over_time);
  out += summary(clients, timeline);
  out += timeline_section(timeline);
  out += clients_section(clients, options);
  out += advice_section(uses);
  out += correlation_section(clients, associations, options);
  out += "<p class=\"muted\">Generated by smtpscope " SMTPSCOPE_VERSION ".</p></body></html>\n";
  return out;
}

}  // namespace smtpscope::cli
