#include "session_facts.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <unordered_map>
#include <unordered_set>

#include "event_attributes.h"

namespace smtpscope::analysis {
namespace {

// A disconnect counter's value: "N" or "OK/TRIED" (Postfix writes nothing
// else there), so no other attribute of the close event is read as one.
bool is_counter_value(std::string_view value) {
  const auto digits = [](std::string_view part) {
    return !part.empty() && part.size() <= 9 &&
           std::all_of(part.begin(), part.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
  };
  const auto slash = value.find('/');
  if (slash == std::string_view::npos) return digits(value);
  return digits(value.substr(0, slash)) && digits(value.substr(slash + 1));
}

using Attributes = EventAttributes;

Attributes attributes_of(const EventRecord& e) { return Attributes(e.attributes_json); }

std::string text(const Attributes& a, const char* name) { return a.text(name); }

char letter_of(const EventRecord& e, const Attributes& a) {
  const std::string& s = e.stage;
  if (s == "connect") return 'C';
  if (s == "helo") return 'H';
  if (s == "mail") return 'M';
  if (s == "rcpt") return text(a, "rejected") == "1" ? 'J' : 'R';
  if (s == "data") return 'D';
  if (s == "eom") return 'E';
  if (s == "abort") return 'A';
  if (s == "unknown") return 'U';
  return 0;
}

using Token = StageToken;

std::string render(const std::vector<Token>& tokens, double& max_gap_s) {
  std::string out;
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    if (i > 0) {
      const double gap = static_cast<double>(tokens[i].time_us - tokens[i - 1].time_us) / 1e6;
      max_gap_s = std::max(max_gap_s, gap);
      if (gap >= 2.0) out += fmt::format(" +{}s", static_cast<long>(std::lround(gap)));
      out += ' ';
    }
    out += tokens[i].letter;
  }
  return out;
}

std::optional<std::string> sender_of(const Attributes& a) {
  const std::string* from = a.string_value("from");
  return from ? std::optional<std::string>(*from) : std::nullopt;
}

// A HELO name the log quotes: helo=<...> of a reject line, or the EHLO in
// the bytes postscreen quotes (PREGREET, COMMAND PIPELINING, BARE NEWLINE).
void note_helo(const Attributes& a, LogView& log) {
  const std::string helo = text(a, "helo");
  if (!helo.empty() && std::find(log.helos.begin(), log.helos.end(), helo) == log.helos.end()) {
    log.helos.push_back(helo);
  }
}

// Queue ids of the session's queued messages, and cleanup's content
// rejects by queue id, joined once every event is read (cleanup's line
// follows smtpd's "QID: client=").
struct QueueIds {
  std::vector<std::string> queued;                                          // per log.queued_us
  std::vector<std::pair<std::string, std::optional<std::string>>> refused;  // queue id, sender
};

// cleanup's reject of a header or body line, or a milter's of the message
// (at END-OF-MESSAGE): the message was refused for its content.
bool content_reject(const LogReject& r) {
  const bool content =
      r.command == "header" || r.command == "body" || r.command == "END-OF-MESSAGE";
  return content && r.action.find("reject") != std::string::npos;
}

void read_reject(const EventRecord& e, const Attributes& a, SessionFacts& f, LogView& log,
                 QueueIds& ids) {
  LogReject r{e.time_us, text(a, "command"), text(a, "code"), text(a, "action"), sender_of(a),
              text(a, "to")};
  if (r.action == "auth-failed") ++f.auth_failures;
  // cleanup logs a DSN (5.7.1) where smtpd logs a reply code.
  const std::string code = r.code.empty() && content_reject(r) ? text(a, "dsn") : r.code;
  if (r.action.find("reject") != std::string::npos || r.action == "defer") {
    f.temp_rejects += code.starts_with('4');
    f.perm_rejects += code.starts_with('5');
  }
  if (content_reject(r)) {
    ++f.content_rejects;
    if (!text(a, "queue_id").empty()) ids.refused.emplace_back(text(a, "queue_id"), r.from);
  }
  log.rejects.push_back(std::move(r));
}

void read_log(const EventRecord& e, const Attributes& a, SessionFacts& f, LogView& log,
              QueueIds& ids) {
  f.have_log = true;
  if (e.stage == "reject" || e.stage == "screen") note_helo(a, log);
  if (e.stage == "reject") {
    read_reject(e, a, f, log, ids);
  } else if (e.stage == "queued") {
    log.queued_us.push_back(e.time_us);
    log.queued_from.push_back(sender_of(a));  // qmgr's from=<S>, when it was joined
    log.queued_refused.push_back(false);
    ids.queued.push_back(text(a, "queue_id"));
  } else if (e.stage == "tls" && text(a, "outcome") == "failed") {
    if (!f.tls_failed) f.tls_failure = e.argument;
    f.tls_failed = true;
  }
  if (e.stage == "lost" && text(a, "tls") == "failed") {
    if (!f.tls_failed) f.tls_failure = "lost connection after STARTTLS";
    f.tls_failed = true;
  }
  if (e.stage == "close") {
    log.disconnected = true;
    for (const auto& [name, value, is_string] : a.items()) {
      static const std::vector<std::string> not_counters = {
          "client_name", "client_addr", "client_port", "program", "pid", "clock", "host"};
      if (is_string && is_counter_value(value) &&
          std::find(not_counters.begin(), not_counters.end(), name) == not_counters.end()) {
        f.log_counters[name] = value;
      }
    }
  } else if (e.stage == "lost" || e.stage == "timeout" || e.stage == "error_limit") {
    f.end = e.stage == "lost" ? "lost" : e.stage == "timeout" ? "timeout" : "error-limit";
    f.lost_after = text(a, "after");
  } else if (e.stage == "pipelining") {
    f.pipelining = true;
    if (text(a, "after") == "CONNECT") f.pregreet = true;
  } else if (e.stage == "non_smtp") {
    f.non_smtp = true;
    log.non_smtp = true;
  } else if (e.stage == "screen") {
    f.screen_verdicts.push_back(text(a, "verdict"));
    if (f.screen_verdicts.back() == "PREGREET") f.pregreet = true;
  }
}

// The end of the session, from the log when there is one.
char end_letter(SessionFacts& f, const LogView& log) {
  if (f.end == "lost") return 'L';
  if (f.end == "timeout") return 'T';
  if (f.end == "error-limit") return 'K';
  if (!f.log_counters.empty() || f.have_log) {
    if (succeeded(f.log_counters, "quit").value_or(0) > 0) {
      f.end = "quit";
      return 'Q';
    }
    if (f.log_counters.empty()) {
      f.end = "closed";
      f.notes.push_back(log.disconnected
                            ? "the log's disconnect line has no counters: whether the client "
                              "sent QUIT or dropped the connection is unknown"
                            : "the log has no disconnect line for this session");
      return 'Z';
    }
    f.end = "lost";  // no QUIT counted: the client dropped the connection
    return 'L';
  }
  f.end = "closed";
  f.notes.push_back("no log lines for this session: QUIT, RSET and NOOP are unknown "
                    "(run smtpscope ingest)");
  return 'Z';
}

// The policy server sees no abort: with the log's counters, a transaction
// (from its MAIL to the next MAIL or the end) that reached no end of
// message was aborted, as a milter would have shown with A. When the
// policy server was not asked at END-OF-MESSAGE (no E at all), the log's
// data= count says how many DATAs were queued.
void end_policy_transactions(std::vector<Token>& tokens, const SessionFacts& f) {
  if (f.log_counters.empty()) return;
  const bool saw_eom = std::any_of(tokens.begin(), tokens.end(),
                                   [](const Token& t) { return t.letter == 'E'; });
  int queued = saw_eom ? 0 : succeeded(f.log_counters, "data").value_or(0) +
                                 succeeded(f.log_counters, "bdat").value_or(0);
  std::vector<Token> out;
  out.reserve(tokens.size() + tokens.size() / 2);
  bool open = false;
  for (const Token& t : tokens) {
    if (t.letter == 'M' && open) out.push_back(Token{'A', t.time_us});
    if (t.letter == 'M') open = true;
    out.push_back(t);
    if (t.letter == 'D' && !saw_eom && queued > 0) {
      --queued;
      out.push_back(Token{'E', t.time_us});
    }
    if (out.back().letter == 'E') open = false;
  }
  if (open) out.push_back(Token{'A', out.back().time_us});
  tokens = std::move(out);
}

// The policy server is asked before Postfix's own recipient checks, so it
// records as accepted a RCPT that Postfix then refused: each RCPT reject
// line of the log turns the first policy RCPT of its recipient (to=) that
// is still R into J.
void reject_policy_rcpts(std::vector<Token>& tokens,
                         const std::vector<std::pair<std::size_t, std::string>>& rcpts,
                         const LogView& log) {
  // recipient -> its policy RCPT tokens not yet matched, oldest last
  std::unordered_map<std::string, std::vector<std::size_t>> waiting;
  for (auto r = rcpts.rbegin(); r != rcpts.rend(); ++r) waiting[r->second].push_back(r->first);
  for (const LogReject& r : log.rejects) {
    if (r.command != "RCPT" || r.action.find("reject") == std::string::npos) continue;
    auto found = waiting.find(r.to);
    if (found == waiting.end() || found->second.empty()) continue;
    tokens[found->second.back()].letter = 'J';
    found->second.pop_back();
  }
}

// The policy server's transactions as the stages show them once the log
// ended them (end_policy_transactions): the store leaves them open, with no
// recipient counted. Senders from the policy server's MAIL requests, in
// order ("" = the null sender), so every sender is known.
std::vector<LogTransaction> policy_transactions(const std::vector<Token>& tokens,
                                                const std::vector<std::string>& senders) {
  std::vector<LogTransaction> out;
  for (const Token& t : tokens) {
    if (t.letter == 'M') {
      out.push_back(LogTransaction{});
      if (out.size() <= senders.size()) out.back().mail_from = senders[out.size() - 1];
    }
    if (out.empty()) continue;
    LogTransaction& current = out.back();
    current.rcpt_accepted += t.letter == 'R';
    current.rcpt_rejected += t.letter == 'J';
    current.reached_data = current.reached_data || t.letter == 'D';
    current.delivered = current.delivered || t.letter == 'E';
  }
  return out;
}

// A content reject marks its queued message refused and names its sender
// when qmgr did not (a refused message never reaches qmgr).
void join_refused(const QueueIds& ids, LogView& log) {
  if (ids.refused.empty()) return;
  std::unordered_map<std::string, std::size_t> queued;
  for (std::size_t i = 0; i < ids.queued.size(); ++i) queued.emplace(ids.queued[i], i);
  for (const auto& [queue_id, from] : ids.refused) {
    const auto found = queued.find(queue_id);
    if (found == queued.end()) continue;
    log.queued_refused[found->second] = true;
    if (!log.queued_from[found->second]) log.queued_from[found->second] = from;
  }
}

// Without a disconnect line's counters, the SASL failure lines still say
// AUTH was tried and failed: auth=0/N (and mail=N when queue ids counted
// N transactions, so "never mails" is not assumed of a client that did),
// for the patterns' `commands` conditions.
void derive_counters(SessionFacts& f) {
  if (!f.log_counters.empty() || f.auth_failures == 0) return;
  f.counters_derived = true;
  f.log_counters["auth"] = fmt::format("0/{}", f.auth_failures);
  if (f.transactions > 0) f.log_counters["mail"] = std::to_string(f.transactions);
  const std::string mail =
      f.transactions > 0 ? fmt::format(", mail={} from its queue ids", f.transactions) : "";
  f.notes.push_back(fmt::format(
      "no disconnect counters: auth=0/{} counted from the log's SASL failure lines{}",
      f.auth_failures, mail));
}

// The log's facts that no stage letter shows.
void fact_notes(SessionFacts& f) {
  if (f.tls_failed) f.notes.push_back("TLS handshake failed: " + f.tls_failure);
  if (f.content_rejects > 0) {
    f.notes.push_back(fmt::format("{} message{} refused for {} content (cleanup or a milter)",
                                  f.content_rejects, f.content_rejects == 1 ? "" : "s",
                                  f.content_rejects == 1 ? "its" : "their"));
  }
}

}  // namespace

int rsets_inside_transactions(const std::string& stages, int log_rsets, bool quit) {
  // The letters alone: a pause ("+10s") between an abort and the next MAIL
  // does not make it any less the RSET that ended that transaction.
  std::string letters;
  for (std::size_t i = 0; i < stages.size(); ++i) {
    if (stages[i] == '+') {
      while (i < stages.size() && stages[i] != ' ') ++i;
    } else if (stages[i] != ' ') {
      letters += stages[i];
    }
  }
  int followed_by_mail = 0;
  for (std::size_t i = 0; i + 1 < letters.size(); ++i) {
    if (letters[i] == 'A' && letters[i + 1] == 'M') ++followed_by_mail;
  }
  // A last abort before QUIT is an RSET when the log counted more RSETs than
  // the aborts a MAIL followed; otherwise QUIT itself ended the transaction.
  const std::size_t last = letters.rfind('A');
  const bool final_abort =
      last != std::string::npos && letters.find_first_of("MHRJDEU", last) == std::string::npos;
  return followed_by_mail + (final_abort && quit && log_rsets > followed_by_mail ? 1 : 0);
}

namespace {

void reconcile(SessionFacts& f) {
  f.rset = succeeded(f.log_counters, "rset");
  f.noop = succeeded(f.log_counters, "noop");
  const int greeted = succeeded(f.log_counters, "helo").value_or(0) +
                      succeeded(f.log_counters, "ehlo").value_or(0);
  const int greetings_tried = attempted(f.log_counters, "helo").value_or(0) +
                              attempted(f.log_counters, "ehlo").value_or(0);
  f.helo_refused = greetings_tried > 0 && greeted == 0;
  if (f.have_log && f.rset) {
    const int inside = rsets_inside_transactions(f.stages, *f.rset, f.end == "quit");
    if (*f.rset > inside) {
      f.notes.push_back(fmt::format("{} RSET{} outside a transaction (counted by the log, "
                                    "invisible to the milter)",
                                    *f.rset - inside, *f.rset - inside == 1 ? "" : "s"));
    }
  }
  if (f.transactions == 0 && f.stages.find('M') != std::string::npos) {
    f.notes.push_back("MAIL seen but no transaction recorded");
  }
}

// One pass, from the last transaction back: an aborted transaction (with an
// accepted RCPT, before DATA) is retried when a later one from the same
// sender reached DATA.
void transactions_facts(const SessionRecord& s, SessionFacts& f) {
  f.transactions = static_cast<int>(s.transactions.size());
  f.null_sender = false;
  f.retried_same_envelope = false;
  std::unordered_set<std::string> reached_data_later;
  for (auto t = s.transactions.rbegin(); t != s.transactions.rend(); ++t) {
    if (t->outcome == "delivered") ++f.delivered;
    if (t->outcome == "aborted") ++f.aborted;
    if (t->mail_from == "<>") f.null_sender = true;
    if (t->outcome == "aborted" && t->rcpt_accepted > 0 && !t->reached_data &&
        reached_data_later.contains(t->mail_from)) {
      f.retried_same_envelope = true;
    }
    if (t->reached_data) reached_data_later.insert(t->mail_from);
  }
  for (const auto& t : s.transactions) {
    std::string sender = t.mail_from;
    if (sender.size() >= 2 && sender.front() == '<' && sender.back() == '>') {
      sender = sender.substr(1, sender.size() - 2);
    }
    f.senders.push_back(sender);
  }
}

// The same from the log's transactions, where a sender may be unknown: a
// fact that depends on one stays unknown.
void log_transactions_facts(const std::vector<LogTransaction>& transactions, SessionFacts& f) {
  f.transactions = static_cast<int>(transactions.size());
  bool all_known = true;
  f.null_sender = false;
  f.retried_same_envelope = false;
  for (std::size_t i = 0; i < transactions.size(); ++i) {
    const LogTransaction& t = transactions[i];
    f.delivered += t.delivered;
    f.aborted += !t.delivered;
    if (t.mail_from) {
      f.senders.push_back(*t.mail_from);
      if (t.mail_from->empty()) f.null_sender = true;
    } else {
      all_known = false;
    }
    if (t.delivered || t.rcpt_accepted == 0 || t.reached_data) continue;
    for (std::size_t later = i + 1; later < transactions.size(); ++later) {
      const LogTransaction& u = transactions[later];
      if (!u.reached_data) continue;
      if (!t.mail_from || !u.mail_from) {
        if (f.retried_same_envelope == false) f.retried_same_envelope.reset();
      } else if (*t.mail_from == *u.mail_from) {
        f.retried_same_envelope = true;
      }
    }
  }
  if (!all_known && f.null_sender == false) f.null_sender.reset();
}

// HELO or EHLO: as the policy server saw it, else as the log's counters
// say (helo=N and no ehlo= is a HELO: SMTP; any EHLO tried is ESMTP).
std::string greeting_protocol(const SessionRecord& s, const SessionFacts& f) {
  if (!s.protocol.empty()) return s.protocol;
  if (attempted(f.log_counters, "ehlo").value_or(0) > 0) return "ESMTP";
  if (succeeded(f.log_counters, "helo").value_or(0) > 0) return "SMTP";
  return "";
}

void quirks_facts(const SessionRecord& s, SessionFacts& f) {
  HeloContext context{s.client_addr, s.client_name, "", s.server_addr, greeting_protocol(s, f)};
  auto add = [&f](HeloQuirk q) {
    if (std::find(f.quirks.begin(), f.quirks.end(), q) == f.quirks.end()) f.quirks.push_back(q);
  };
  for (const EventRecord& e : s.events) {
    if (e.stage != "connect") continue;
    if (e.source == "milter") context.server_name = text(attributes_of(e), "j");
    // smtpd's PTR check, on the log's connect: the name Postfix could not verify.
    if (e.source == "log") {
      if (auto q = classify_name_check(text(attributes_of(e), "ptr_check"))) add(*q);
    }
  }
  for (const std::string& helo : f.helos) {
    for (HeloQuirk q : classify_helo(helo, context)) add(q);
  }
  if (f.helos.empty() && f.helo_refused) add(HeloQuirk::empty);
  if (f.helos.empty() && context.protocol == "SMTP") add(HeloQuirk::helo_not_ehlo);
  for (std::size_t i = 1; i < f.helos.size(); ++i) {
    if (f.helos[i] != f.helos[0]) add(HeloQuirk::changed_in_session);
  }
}

}  // namespace

SessionFacts facts_of(const SessionRecord& s) {
  SessionFacts f;
  const bool have_milter = std::any_of(s.events.begin(), s.events.end(),
                                       [](const EventRecord& e) { return e.source == "milter"; });
  const bool have_policy = std::any_of(s.events.begin(), s.events.end(),
                                       [](const EventRecord& e) { return e.source == "policy"; });
  const std::string primary = have_milter ? "milter" : have_policy ? "policy" : "log";
  std::vector<Token> tokens;
  LogView log;
  QueueIds ids;
  std::vector<std::pair<std::size_t, std::string>> policy_rcpts;  // token index, recipient
  std::vector<std::string> policy_senders;
  std::int64_t last_time = s.connect_us;
  for (const EventRecord& e : s.events) {
    const Attributes a = attributes_of(e);
    if (e.source == "log") read_log(e, a, f, log, ids);
    if (e.source == "milter" && e.stage == "helo") f.helos.push_back(e.argument);
    last_time = std::max(last_time, e.time_us);
    if (e.source != primary) continue;
    const char letter = letter_of(e, a);
    if (letter == 0 || (primary == "log" && letter != 'C')) continue;
    if (primary == "policy" && e.stage == "rcpt") policy_rcpts.emplace_back(tokens.size(), e.argument);
    if (primary == "policy" && e.stage == "mail") policy_senders.push_back(text(a, "sender"));
    tokens.push_back(Token{letter, e.time_us});
  }
  join_refused(ids, log);
  if (primary == "policy") reject_policy_rcpts(tokens, policy_rcpts, log);
  if (tokens.empty() || tokens.front().letter != 'C') {
    tokens.insert(tokens.begin(), Token{'C', s.connect_us});
  }
  // Without the milter's HELO, the helo=<> of reject lines (smtpd wrote
  // each of <>()\";@` and non-printables as '?').
  if (f.helos.empty()) f.helos = log.helos;
  const std::int64_t end_us = s.close_us.value_or(last_time);
  const bool log_only = primary == "log";
  std::vector<LogTransaction> log_transactions;
  if (log_only && f.have_log) {
    log.counters = f.log_counters;
    log.end_state = f.lost_after;
    LogStages rebuilt = log_stages(log, tokens.front().time_us, end_us);
    tokens.insert(tokens.end(), rebuilt.tokens.begin(), rebuilt.tokens.end());
    log_transactions = std::move(rebuilt.transactions);
    f.notes.insert(f.notes.end(), rebuilt.notes.begin(), rebuilt.notes.end());
  }
  const bool policy_with_counters = primary == "policy" && !f.log_counters.empty();
  if (primary == "policy") end_policy_transactions(tokens, f);
  tokens.push_back(Token{end_letter(f, log), end_us});
  f.stages = render(tokens, f.max_gap_s);
  // Without counters the log's own note says the middle is unknown.
  if (!have_milter && (have_policy || !f.log_counters.empty())) {
    f.notes.insert(f.notes.begin(),
                   have_policy ? "no milter events: stages come from the policy server"
                               : "no milter events: stages rebuilt from the log's counters");
  }
  if (log_only && f.have_log) {
    log_transactions_facts(log_transactions, f);
  } else if (policy_with_counters) {
    log_transactions_facts(policy_transactions(tokens, policy_senders), f);
  } else {
    transactions_facts(s, f);
  }
  derive_counters(f);
  fact_notes(f);
  reconcile(f);
  quirks_facts(s, f);
  return f;
}

}  // namespace smtpscope::analysis
