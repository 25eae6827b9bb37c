// Fuzzes the escaping on the way out: printable() and html_escape() on raw
// bytes, then a whole HTML report of a session whose client name, HELO,
// sender, recipient and unknown command come from the input (the last two
// also as the SMTP AUTH login and method at MAIL). Invariants:
// printable() leaves no control byte, C1 control or bidi override raw,
// html_escape() no markup character, every tag in the page is one the
// renderer writes (an input's "<img" or "<script" would show up as a tag of
// another name), and the page has no C1 control or bidi override raw either
// (one would reorder what the reader sees). A second pass renders the
// overview page (cli/overview_html) of that session and of clients whose
// address comes from the input, at times taken from it (any 64-bit stamp,
// for the pattern timeline's buckets), with the same invariants.
#include <cstring>
#include <set>
#include <string>

#include "client_report.h"
#include "display_safe.h"
#include "fuzz_input.h"
#include "json_text.h"
#include "overview_html.h"
#include "patterns.h"
#include "report_html.h"
#include "text_escape.h"

using namespace smtpscope;

namespace {

void check_escapes(std::string_view raw) {
  const std::string shown = printable(raw, 256);
  fuzz::require(fuzz::display_safe(shown), "printable");
  const std::string escaped = html_escape(shown);
  fuzz::require(escaped.find_first_of("<>\"'") == std::string::npos, "html_escape");
}

SessionRecord hostile_session(const std::vector<std::string_view>& field) {
  SessionRecord session;
  session.id = 1;
  session.client_addr = "192.0.2.1";
  session.client_name = std::string(field[0]);
  session.connect_us = 1'780'000'000'000'000;
  session.close_us = session.connect_us + 2'000'000;
  session.helo = std::string(field[1]);
  const auto at = [&](std::int64_t ms) { return session.connect_us + ms * 1000; };
  TransactionRecord transaction;
  transaction.seq = 1;
  transaction.mail_from = std::string(field[2]);
  transaction.rcpt_accepted = 1;
  transaction.outcome = "aborted";
  session.transactions.push_back(transaction);
  session.events = {
      {"milter", "connect", at(0), std::nullopt, std::string(field[0]), "{}"},
      {"milter", "helo", at(10), std::nullopt, std::string(field[1]), "{}"},
      {"milter", "mail", at(20), 1, std::string(field[2]),
       attributes_to_json({{"{auth_authen}", std::string(field[3])},
                           {"{auth_type}", std::string(field[4])}})},
      {"milter", "rcpt", at(30), 1, std::string(field[3]), "{}"},
      {"milter", "unknown", at(40), 1, std::string(field[4]), "{}"},
      {"milter", "close", at(2000), std::nullopt, "", "{}"}};
  return session;
}

std::string render(const std::vector<std::string_view>& field) {
  static const auto patterns =
      analysis::parse_patterns(analysis::builtin_patterns_yaml(), "builtin").value();
  const std::vector<SessionRecord> sessions{hostile_session(field)};  // the analysis points into it
  const auto clients = cli::by_client(cli::analyse(sessions, patterns));
  fuzz::require(clients.size() == 1, "one client");
  return cli::render_report_html(clients.front());
}

// The overview of the hostile session and of two clients named by the
// input, one connecting at a time read from its first eight bytes.
std::string render_overview(std::string_view text, const std::vector<std::string_view>& field) {
  static const auto patterns =
      analysis::parse_patterns(analysis::builtin_patterns_yaml(), "builtin").value();
  std::int64_t when = 0;
  std::memcpy(&when, text.data(), std::min(text.size(), sizeof when));
  std::vector<SessionRecord> sessions{hostile_session(field), hostile_session(field),
                                      hostile_session(field)};
  sessions[1].id = 2;
  sessions[1].client_addr = std::string(field[0]);
  sessions[2].id = 3;
  sessions[2].client_addr = std::string(field[1]) + "\x01";
  sessions[2].connect_us = when;
  sessions[2].close_us.reset();
  for (auto& e : sessions[2].events) e.time_us = when;
  const auto clients = cli::by_client(cli::analyse(sessions, patterns));
  cli::OverviewOptions options;
  options.top_clients = 2;
  options.link_clients = true;
  std::vector<analysis::Observation> observations;
  std::vector<cli::TimedCount> over_time;
  for (const auto& c : clients) {
    for (const auto& a : c.sessions) {
      analysis::Observation o{a.fingerprint.id, {}, {}};
      for (auto q : a.facts.quirks) o.quirks.emplace_back(analysis::to_string(q));
      for (const auto* p : a.patterns) o.patterns.push_back(p->name);
      observations.push_back(std::move(o));
      over_time.push_back({a.session->connect_us, a.patterns.empty() ? "" : a.patterns.front()->name, 1});
    }
  }
  return cli::render_overview_html(clients, analysis::correlate(observations), over_time, options);
}

// Tag names report_html.cpp, overview_html.cpp and pattern_timeline.cpp write.
bool own_tag(std::string_view name) {
  static const std::set<std::string_view> names{
      "!DOCTYPE", "a", "body", "circle", "code", "div", "em", "h1", "h2", "h3", "head", "html",
      "line", "meta", "p", "rect", "span", "strong", "style", "svg", "table", "td", "text", "th",
      "title", "tr"};
  return names.contains(name);
}

bool only_own_tags(std::string_view page) {
  for (auto open = page.find('<'); open != std::string_view::npos; open = page.find('<', open + 1)) {
    auto start = open + 1;
    if (start < page.size() && page[start] == '/') ++start;
    const auto end = page.find_first_of(" >\n", start);
    if (end == std::string_view::npos || !own_tag(page.substr(start, end - start))) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  check_escapes(text);
  const auto field = fuzz::fields(text, 5);
  for (const std::string& page : {render(field), render_overview(text, field)}) {
    fuzz::require(only_own_tags(page), "markup from the input escaped");
    fuzz::require(fuzz::display_safe(page, true), "no control, C1 or bidi character in the page");
  }
  return 0;
}
