#include "timeline_text.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "event_attribute.h"
#include "session_facts.h"
#include "smtp_login.h"
#include "terminal_style.h"
#include "text_escape.h"
#include "time_view.h"

namespace smtpscope::cli {
namespace {

// Seconds from the connect to an event; a whole-second log stamp counts
// from the end of its second, when the line had certainly been written.
double offset_s(const SessionRecord& s, const EventRecord& event, bool coarse) {
  constexpr std::int64_t rest_of_second = 999'999;
  const bool room = event.time_us <= std::numeric_limits<std::int64_t>::max() - rest_of_second;
  return seconds_between(s.connect_us, coarse && room ? event.time_us + rest_of_second
                                                      : event.time_us);
}

std::string endpoint(const std::string& addr, const std::optional<std::int64_t>& port) {
  const std::string shown = addr.empty() ? "?" : printable(addr);
  return port ? fmt::format("{}:{}", shown, *port) : shown;
}

std::string with_esmtp(const EventRecord& event) {
  const std::string esmtp = event_attribute(event, "esmtp");
  return esmtp.empty() ? printable(event.argument)
                       : printable(event.argument) + " " + printable(esmtp);
}

// "   [AUTH user METHOD]" at a MAIL of a client that logged in, else empty.
std::string login_note(const EventRecord& event) {
  const auto login = login_at_mail(event);
  if (!login) return "";
  return fmt::format("   [AUTH {} {}]", printable(login->user, 200), printable(login->method, 40));
}

// A policy request is Postfix asking before it answers the client: the
// greeting verb (protocol_name) shows here, and any rule that answered.
std::string describe_policy(const EventRecord& event) {
  const std::string& stage = event.stage;
  const std::string arg = printable(event.argument);
  std::string line;
  if (stage == "helo") {
    // protocol_state is the verb itself; protocol_name changes only after it.
    line = "C: " + printable(event_attribute(event, "protocol_state")) + " " + arg;
    const std::string tls = event_attribute(event, "encryption_protocol");
    if (!tls.empty()) line += "   [TLS " + printable(tls) + "]";
  } else if (stage == "mail") {
    line = "check MAIL FROM:<" + arg + ">" + login_note(event);
  } else if (stage == "rcpt") {
    line = "check RCPT TO:<" + arg + ">";
  } else if (stage == "vrfy") {
    line = "C: VRFY " + arg;
  } else if (stage == "etrn") {
    line = "C: ETRN " + arg;
  } else if (stage == "eom") {
    line = fmt::format("check END-OF-MESSAGE ({} bytes)", printable(event_attribute(event, "size")));
  } else {
    std::string upper = printable(stage);
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    line = "check " + upper;
  }
  const std::string rule = event_attribute(event, "rule");
  return rule.empty() ? line : line + "   -> rule " + printable(rule);
}

// The log's disconnect counters (ehlo=1 mail=2 rset=2 ...) in Postfix's order.
std::string counters(const EventRecord& event) {
  static constexpr const char* names[] = {"helo", "ehlo", "xclient", "xforward", "starttls",
                                          "auth", "mail", "rcpt", "data", "bdat", "rset",
                                          "noop", "vrfy", "etrn", "quit", "unknown", "help",
                                          "commands"};
  std::string out;
  for (const char* name : names) {
    const std::string value = event_attribute(event, name);
    if (!value.empty()) out += fmt::format(" {}={}", name, printable(value));
  }
  return out;
}

// A reject line: smtpd's reply to a command; a failed SASL AUTH (the
// method, the user name the client gave, the SASL library's reason); or
// cleanup's content reject (the header or body line it refused, its reply).
std::string describe_reject(const EventRecord& event) {
  const std::string action = printable(event_attribute(event, "action"));
  const std::string command = event_attribute(event, "command");
  const std::string arg = printable(event.argument);
  if (action == "auth-failed") {
    const std::string user = event_attribute(event, "sasl_username");
    return fmt::format("AUTH {} failed{}: {}", printable(event_attribute(event, "sasl_method"), 40),
                       user.empty() ? "" : " (user " + printable(user, 200) + ")", arg);
  }
  if (command == "header" || command == "body") {
    return fmt::format("{} {} {}   S: {}", action, command, arg,
                       printable(event_attribute(event, "reply")));
  }
  return fmt::format("{} {}: S: {}", action, printable(command), arg);
}

// What Postfix logged: the facts no other sensor sees.
std::string describe_log(const EventRecord& event) {
  const std::string& stage = event.stage;
  const std::string arg = printable(event.argument);
  const std::string after = printable(event_attribute(event, "after"));
  if (stage == "connect") return "connect from " + printable(event_attribute(event, "client_name"));
  if (stage == "close") return "disconnect" + counters(event);
  if (stage == "lost") {
    const bool tls = event_attribute(event, "tls") == "failed";
    return "lost connection after " + after + (tls ? " (TLS handshake failed)" : "");
  }
  if (stage == "timeout") return "timeout after " + after;
  if (stage == "error_limit") return "too many errors after " + after;
  if (stage == "pipelining") return "improper command pipelining after " + after + ": " + arg;
  if (stage == "reject") return describe_reject(event);
  if (stage == "queued") return "queue file " + printable(event_attribute(event, "queue_id"));
  if (stage == "non_smtp") return "non-SMTP command: " + arg;
  if (stage == "illegal") {
    return "illegal address syntax in " + printable(event_attribute(event, "command")) + ": " + arg;
  }
  if (stage == "tls" && event_attribute(event, "outcome") == "failed") {
    return "TLS handshake failed: " + arg;
  }
  if (stage == "tls") {
    return fmt::format("{} TLS {} {}", printable(event_attribute(event, "trust")),
                       printable(event_attribute(event, "tls_version")),
                       printable(event_attribute(event, "cipher")));
  }
  if (stage == "screen") {
    return fmt::format("postscreen {} {} {}", printable(event_attribute(event, "verdict")),
                       printable(event_attribute(event, "detail")), arg);
  }
  return printable(stage) + " " + arg;
}

// What a milter abort was, from what followed it and the log's counters:
// a MAIL after it means RSET, a HELO means a new greeting, the end of the
// session means RSET then QUIT, QUIT with the transaction open, or a lost
// connection; without the log the last three cannot be told apart.
std::string abort_label(const SessionRecord& s, std::size_t index) {
  std::string next;
  for (std::size_t i = index + 1; i < s.events.size() && next.empty(); ++i) {
    if (s.events[i].source == "milter") next = s.events[i].stage;
  }
  if (next == "mail") return "RSET (a new MAIL follows)";
  if (next == "helo") return "new HELO/EHLO (or STARTTLS)";
  const EventRecord* log_close = nullptr;
  bool lost = false;
  int resets_before_mail = 0;
  for (std::size_t i = 0; i < s.events.size(); ++i) {
    const EventRecord& e = s.events[i];
    if (e.source == "log" && e.stage == "close") log_close = &e;
    if (e.source == "log" && (e.stage == "lost" || e.stage == "timeout")) lost = true;
    if (e.source == "milter" && e.stage == "abort") {
      for (std::size_t j = i + 1; j < s.events.size(); ++j) {
        if (s.events[j].source != "milter") continue;
        resets_before_mail += s.events[j].stage == "mail";
        break;
      }
    }
  }
  if (log_close == nullptr) return "RSET, QUIT or lost connection (no log to tell)";
  if (lost || event_attribute(*log_close, "quit").empty()) return "connection lost, transaction open";
  const std::string rset = event_attribute(*log_close, "rset");
  const int rsets = rset.empty() ? 0 : std::atoi(rset.c_str());
  return rsets > resets_before_mail ? "RSET, then QUIT" : "QUIT with the transaction open";
}

std::string describe(const SessionRecord& s, std::size_t index) {
  const EventRecord& event = s.events[index];
  if (event.source == "milter" && event.stage == "abort") {
    return "-- transaction aborted: " + abort_label(s, index);
  }
  if (event.source == "policy") return describe_policy(event);
  if (event.source == "log") return describe_log(event);
  const std::string& stage = event.stage;
  if (stage == "connect") return "connect";
  if (stage == "helo") {
    const std::string tls = event_attribute(event, "{tls_version}");
    return "C: HELO/EHLO " + printable(event.argument) +
           (tls.empty() ? "" : fmt::format("   [TLS {} {}]", printable(tls),
                                           printable(event_attribute(event, "{cipher}"))));
  }
  if (stage == "mail") {
    return "C: MAIL FROM:" + with_esmtp(event) + login_note(event);
  }
  if (stage == "rcpt") {
    std::string line = "C: RCPT TO:" + with_esmtp(event);
    if (event_attribute(event, "rejected") == "1") {
      line += fmt::format("   S: rejected {} {}", printable(event_attribute(event, "status")),
                          printable(event_attribute(event, "reason")));
    }
    return line;
  }
  if (stage == "data") return "C: DATA";
  if (stage == "header") return "   header " + printable(event.argument);
  if (stage == "eom") {
    const std::string queue_id = event_attribute(event, "queue_id");
    const std::string bytes = event_attribute(event, "body_bytes");
    return fmt::format("C: .   S: queued{}{}", queue_id.empty() ? "" : " as " + printable(queue_id),
                       bytes.empty() ? "" : fmt::format(" ({} body bytes)", printable(bytes)));
  }
  if (stage == "unknown") return "C: " + printable(event.argument) + "   (unknown command)";
  if (stage == "close") return "-- connection closed";
  return printable(stage) + " " + printable(event.argument);
}

std::string describe(const TransactionRecord& t) {
  std::string recipients = fmt::format("{} recipient{} accepted", t.rcpt_accepted,
                                       t.rcpt_accepted == 1 ? "" : "s");
  if (t.rcpt_rejected > 0) recipients += fmt::format(", {} rejected", t.rcpt_rejected);
  std::string outcome;
  if (t.outcome == "delivered") {
    outcome = "delivered" + (t.queue_id.empty() ? "" : " as " + printable(t.queue_id));
  } else if (t.outcome == "aborted") {
    outcome = t.reached_data ? "aborted during DATA" : "aborted before DATA";
  } else {
    outcome = "still open";
  }
  return fmt::format("transaction {}: MAIL FROM:{}, {}; {}", t.seq, printable(t.mail_from),
                     recipients, outcome);
}

// The log's RSETs that the milter could not see (outside a transaction),
// to be placed before the MAILs that follow an end of message or an abort.
int rsets_outside(const SessionRecord& s) {
  std::string stages;
  bool quit = false;
  int rsets = 0;
  for (const auto& e : s.events) {
    if (e.source == "milter") {
      const std::string& st = e.stage;
      const char letter = st == "mail" ? 'M' : st == "abort" ? 'A' : st == "eom" ? 'E'
                        : st == "helo" ? 'H' : st == "rcpt" ? 'R' : st == "data" ? 'D' : 0;
      if (letter) stages += std::string(stages.empty() ? "" : " ") + letter;
    } else if (e.source == "log" && e.stage == "close") {
      rsets = std::atoi(event_attribute(e, "rset").c_str());
      quit = !event_attribute(e, "quit").empty();
    }
  }
  return std::max(0, rsets - analysis::rsets_inside_transactions(stages, rsets, quit));
}

// Under a session without recorded transactions: none, when the milter saw
// the session; else how many the analysis counts from the policy server's
// requests or the log (its counters, or its queue ids where it has none).
std::string no_recorded_transactions(const SessionRecord& s) {
  const bool milter = std::any_of(s.events.begin(), s.events.end(),
                                  [](const EventRecord& e) { return e.source == "milter"; });
  if (milter) return "no mail transaction";
  const analysis::SessionFacts f = analysis::facts_of(s);
  if (f.transactions == 0) return "no mail transaction";
  const bool policy = std::any_of(s.events.begin(), s.events.end(),
                                  [](const EventRecord& e) { return e.source == "policy"; });
  const bool counters = !f.log_counters.empty() && !f.counters_derived;
  const char* source = policy     ? "the policy server's requests"
                       : counters ? "the log's counters"
                                  : "the log's queue ids";
  return fmt::format("{} mail transaction{} ({} delivered, {} not), counted from {}",
                     f.transactions, f.transactions == 1 ? "" : "s", f.delivered, f.aborted,
                     source);
}

void render_session(std::string& out, const SessionRecord& s,
                    const std::vector<std::string>& notes) {
  int unplaced_rsets = rsets_outside(s);
  int slots = 0;  // MAILs after an end of message or abort: where such RSETs go
  std::string previous;
  for (const auto& e : s.events) {
    if (e.source != "milter") continue;
    if (e.stage == "mail" && (previous == "eom" || previous == "abort")) ++slots;
    previous = e.stage;
  }
  previous.clear();
  const std::string duration =
      s.close_us ? fmt::format("{:.3f} s", seconds_between(s.connect_us, *s.close_us))
                 : "open";
  out += fmt::format("session {}  {} ({}) -> {}{}  {}  {}{}\n", s.id,
                     endpoint(s.client_addr, s.client_port), printable(s.client_name),
                     endpoint(s.server_addr, s.server_port),
                     s.host.empty() ? "" : " on " + printable(s.host), utc_text(s.connect_us),
                     duration,
                     s.partial ? "  [partial: connect not observed]" : "");
  for (std::size_t index = 0; index < s.events.size(); ++index) {
    const EventRecord& event = s.events[index];
    if (event.source == "milter" && event.stage == "mail" &&
        (previous == "eom" || previous == "abort") && unplaced_rsets > 0) {
      const int here = slots > 1 ? 1 : unplaced_rsets;  // the last slot takes the rest
      out += fmt::format("  {:>11}  {:<6}  C: RSET{}   (outside a transaction: counted by the "
                         "log, unseen by the milter)\n",
                         "", "log", here > 1 ? fmt::format(" x{}", here) : "");
      unplaced_rsets -= here;
      --slots;
    }
    if (event.source == "milter") previous = event.stage;
    // A whole-second log stamp: the line was written before the second ended.
    const bool coarse = event_attribute(event, "clock") == "second";
    const double offset = offset_s(s, event, coarse);
    const std::string when =
        coarse ? fmt::format("<{:+.1f}s", offset) : fmt::format("{:+.3f}s", offset);
    out += fmt::format("  {:>11}  {:<6}  {}\n", when, printable(event.source),
                       describe(s, index));
  }
  for (const auto& t : s.transactions) out += "  " + describe(t) + "\n";
  if (s.transactions.empty()) out += "  " + no_recorded_transactions(s) + "\n";
  for (const auto& note : notes) out += "  note: " + printable(note) + "\n";
}

}  // namespace

TimelineTextWriter::TimelineTextWriter(std::ostream& out, bool colour)
    : out_(out), colour_(colour) {}

void TimelineTextWriter::add(const SessionRecord& session, const std::vector<std::string>& notes) {
  std::string text = any_ ? "\n" : "";
  render_session(text, session, notes);
  any_ = true;
  out_ << (colour_ ? colourize(text) : text);
}

void TimelineTextWriter::finish() {
  if (!any_) out_ << "no sessions recorded\n";
}

std::string render_timelines_text(const std::vector<SessionRecord>& sessions,
                                  const std::vector<std::vector<std::string>>& notes) {
  std::ostringstream out;
  TimelineTextWriter writer(out, false);
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    writer.add(sessions[i], i < notes.size() ? notes[i] : std::vector<std::string>{});
  }
  writer.finish();
  return out.str();
}

}  // namespace smtpscope::cli
