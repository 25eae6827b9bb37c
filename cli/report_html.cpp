#include "report_html.h"

#include <fmt/format.h>

#include <algorithm>

#include "event_offset.h"
#include "html_page.h"
#include "smtp_login.h"
#include "text_escape.h"
#include "time_view.h"

namespace smtpscope::cli {
namespace {

std::string h(std::string_view raw, std::size_t max = 512) { return html_text(raw, max); }

// The report's own rules, after html_page_head's base ones.
constexpr std::string_view style = R"(
.verdict{background:#fff7e0;border-left:4px solid #e0a800;padding:.6em 1em}
code{font-family:ui-monospace,monospace;background:#f4f5f8;padding:0 .2em} .stages{font-family:ui-monospace,monospace;font-weight:bold}
.milter{color:#1f5fbf} .policy{color:#7a3fb0} .log{color:#2e7d32} svg{display:block;margin:.4em 0}
td.coarse{font-style:italic;color:#556}
)";

const char* colour_of(const std::string& source) {
  if (source == "milter") return "#1f5fbf";
  if (source == "policy") return "#7a3fb0";
  return "#2e7d32";
}

// One session as an SVG time axis: a dot per event, coloured by source, one
// row per source, hover text from <title>. A whole-second log event sits
// at the end of its second, drawn as a ring: it happened no later.
std::string timeline_svg(const AnalysedSession& a) {
  const SessionRecord& s = *a.session;
  double span_s = s.close_us ? seconds_between(s.connect_us, *s.close_us) : 0;
  for (const auto& e : s.events) span_s = std::max(span_s, event_offset(s, e).seconds);
  const double span = std::max(span_s * 1e6, 1000.0);
  const int width = 1000, left = 60, right = 20, row = 22;
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" role=\"img\" "
      "aria-label=\"session timeline\">",
      width, row * 3 + 30);
  const char* sources[] = {"milter", "policy", "log"};
  for (int r = 0; r < 3; ++r) {
    const int y = 15 + r * row;
    svg += fmt::format("<text x=\"0\" y=\"{}\" font-size=\"12\" fill=\"{}\">{}</text>", y + 4,
                       colour_of(sources[r]), sources[r]);
    svg += fmt::format("<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#e3e5ea\"/>", left,
                       y, width - right, y);
  }
  for (const auto& e : s.events) {
    const int r = e.source == "milter" ? 0 : e.source == "policy" ? 1 : 2;
    const EventOffset at = event_offset(s, e);
    const double x = left + (width - left - right) * std::clamp(at.seconds * 1e6 / span, 0.0, 1.0);
    svg += fmt::format(
        "<circle cx=\"{:.1f}\" cy=\"{}\" r=\"5\" {}><title>{} {} {} {}</title></circle>", x,
        15 + r * row,
        at.coarse ? fmt::format("fill=\"white\" stroke=\"{}\" stroke-width=\"2\"", colour_of(e.source))
                  : fmt::format("fill=\"{}\"", colour_of(e.source)),
        html_escape(offset_label(at)), h(e.source), h(e.stage), h(e.argument, 200));
  }
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#667\">0 s</text>", left,
                     row * 3 + 25);
  svg += fmt::format("<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#667\" text-anchor=\"end\">"
                     "{:.3f} s</text></svg>",
                     width - right, row * 3 + 25, span / 1e6);
  return svg;
}

// " [AUTH user METHOD]" at a MAIL of a client that logged in, escaped.
std::string login_cell(const EventRecord& e) {
  const auto login = login_at_mail(e);
  return login ? fmt::format(" <strong>[AUTH {} {}]</strong>", h(login->user, 200),
                           h(login->method, 40))
               : "";
}

std::string events_table(const AnalysedSession& a) {
  std::string out = "<table><tr><th>time</th><th>source</th><th>stage</th><th>text</th></tr>";
  for (const auto& e : a.session->events) {
    const EventOffset at = event_offset(*a.session, e);
    out += fmt::format("<tr><td{}>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}{}</td></tr>",
                       at.coarse ? " class=\"coarse\" title=\"whole-second log stamp: no later "
                                   "than this\""
                                 : "",
                       html_escape(offset_label(at)), h(e.source), h(e.source), h(e.stage),
                       h(e.argument, 300), login_cell(e));
  }
  return out + "</table>";
}

}  // namespace

std::string render_report_html(const ClientSummary& c) {
  const double rate = c.transactions ? static_cast<double>(c.aborted) / static_cast<double>(c.transactions) : 0;
  std::string out = html_page_head("smtpscope report: " + c.client_addr, style);
  out += fmt::format("<h1>Client <code>{}</code></h1><p class=\"muted\">{} sessions, {} "
                     "transactions: {} delivered, {} aborted ({:.0f}% aborted)</p>\n",
                     h(c.client_addr), c.session_count, c.transactions, c.delivered, c.aborted,
                     rate * 100);
  if (!c.pattern_counts.empty()) {
    const analysis::Pattern& top = *c.pattern_counts.front().first;
    out += fmt::format("<div class=\"verdict\"><strong>Most likely: {}</strong><p>{}</p>"
                       "<p><strong>What to do:</strong> {}</p></div>\n",
                       html_escape(top.title), html_escape(top.explanation),
                       html_escape(top.advice));
  } else {
    out += "<p>No pattern matched; its sessions look ordinary.</p>\n";
  }
  out += fmt::format("<h2>Anomaly score {:.2f}</h2><table><tr><th>weight</th><th>reason</th></tr>",
                     c.anomaly.score);
  for (const auto& r : c.anomaly.reasons) {
    out += fmt::format("<tr><td>{:.2f}</td><td>{}</td></tr>", r.weight, h(r.text));
  }
  out += "</table>\n";
  out += "<h2>Patterns</h2><table><tr><th>pattern</th><th>sessions</th><th>meaning</th></tr>";
  for (const auto& [p, n] : c.pattern_counts) {
    out += fmt::format("<tr><td><code>{}</code></td><td>{} of {}</td><td>{}</td></tr>",
                       html_escape(p->name), n, c.session_count, html_escape(p->title));
  }
  out += "</table>\n<h2>HELO quirks and fingerprints</h2><p>Quirks: ";
  out += c.quirks.empty() ? "none" : h(fmt::format("{}", fmt::join(c.quirks, ", ")));
  out += "</p><table><tr><th>fingerprint</th><th>features</th></tr>";
  for (const auto& f : c.fingerprints) {
    out += fmt::format("<tr><td><code>{}</code></td><td>{} session{}: {}</td></tr>", h(f.id),
                       f.sessions, f.sessions == 1 ? "" : "s", h(f.features));
  }
  out += "</table>\n<h2>Sessions</h2><p class=\"muted\">Times are from the connect. "
         "<em>&lt;+11.0s</em> (a ring in the chart): the log's whole-second stamp, the event "
         "happened no later than that.</p>";
  for (const auto& a : c.sessions) {
    std::vector<std::string> names;
    for (const auto* p : a.patterns) names.push_back(p->name);
    out += fmt::format("<h3>Session {} <span class=\"stages\">[{}]</span> {}</h3>", a.session->id,
                       h(a.facts.stages), names.empty() ? "no pattern"
                                                        : h(fmt::format("{}", fmt::join(names, ", "))));
    out += fmt::format("<p class=\"muted\">HELO: {}</p>",
                       a.facts.helos.empty() ? "none" : h(fmt::format("{}", fmt::join(a.facts.helos, " | "))));
    for (const auto& note : a.facts.notes) out += "<p class=\"muted\">note: " + h(note) + "</p>";
    out += timeline_svg(a) + events_table(a) + "\n";
  }
  out += "<p class=\"muted\">Generated by smtpscope " SMTPSCOPE_VERSION ".</p></body></html>\n";
  return out;
}

}  // namespace smtpscope::cli
