#include "log_stages.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

namespace smtpscope::analysis {
namespace {

// A counter beyond this is taken as this: the work stays bounded whatever
// a (damaged) line claims.
constexpr int max_count = 10000;
constexpr std::int64_t undated = -1;

std::optional<int> number(std::string_view text) {
  int value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
  return value;
}

class Counts {
 public:
  explicit Counts(const std::map<std::string, std::string>& counters) : counters_(counters) {}
  int ok(const std::string& name) const {
    return std::min(succeeded(counters_, name).value_or(0), max_count);
  }
  int tried(const std::string& name) const {
    return std::min(attempted(counters_, name).value_or(0), max_count);
  }

 private:
  const std::map<std::string, std::string>& counters_;
};

std::optional<std::string> queued_sender(const LogView& log, std::size_t i) {
  return i < log.queued_from.size() ? log.queued_from[i] : std::nullopt;
}

bool queued_refused(const LogView& log, std::size_t i) {
  return i < log.queued_refused.size() && log.queued_refused[i];
}

// The queued messages in the order transactions are planned: those whose
// content cleanup refused first (they go to transactions whose DATA
// failed), the others after, each group in time order.
std::vector<std::size_t> queued_order(const LogView& log) {
  std::vector<std::size_t> order(log.queued_us.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_partition(order.begin(), order.end(),
                        [&log](std::size_t i) { return queued_refused(log, i); });
  return order;
}

enum class Kind { no_recipient, not_delivered, delivered };

struct Planned {
  Kind kind;
  LogTransaction facts;
  std::vector<const LogReject*> rejected;  // dated J tokens
  std::int64_t accepted_us = undated;      // the "QID: client=" line
  int extra_accepted = 0;
  int undated_rejected = 0;
  bool content_failed = false;  // DATA accepted, content not queued
};

// The order the transactions are shown in: those that failed first, the
// delivered last, except that a session that ended inside a transaction
// (lost or timed out after MAIL/RCPT/DATA) ends with an open one.
std::vector<Planned> plan(const Counts& c, const LogView& log, std::vector<std::string>& notes) {
  const int n = c.ok("mail");
  const int rcpt_ok = c.ok("rcpt");
  int with_rcpt = std::min(n, rcpt_ok);
  const int data_ok = c.ok("data") + std::min(c.ok("bdat"), with_rcpt);
  if (!log.queued_us.empty()) {
    with_rcpt =
        std::clamp(static_cast<int>(log.queued_us.size()), std::min(data_ok, with_rcpt), with_rcpt);
  }
  const int delivered = std::min(data_ok, with_rcpt);
  std::vector<Planned> out;
  for (int i = 0; i < n; ++i) {
    const Kind kind = i < n - with_rcpt   ? Kind::no_recipient
                      : i < n - delivered ? Kind::not_delivered
                                          : Kind::delivered;
    out.push_back(Planned{kind, {}, {}, undated, 0, 0, false});
  }
  const std::string& end = log.end_state;
  const bool ended_inside = end == "MAIL" || end == "RCPT" || end == "DATA" || end == "BDAT";
  if (ended_inside && n > 0 && out.back().kind == Kind::delivered) {
    auto open = std::find_if(out.rbegin(), out.rend(),
                             [](const Planned& p) { return p.kind != Kind::delivered; });
    if (open != out.rend()) std::rotate(open.base() - 1, open.base(), out.end());
  }
  const bool mixed = std::any_of(out.begin(), out.end(),
                                 [&](const Planned& p) { return p.kind != out.front().kind; });
  if (n > 1 && mixed) {
    notes.push_back(
        fmt::format("the log does not give the order of the {} transactions: "
                    "those that failed are shown first",
                    n));
  }
  return out;
}

void place_recipients(const Counts& c, const LogView& log, std::vector<Planned>& planned,
                      std::vector<std::string>& notes) {
  const int n = static_cast<int>(planned.size());
  int accepted_left = c.ok("rcpt");
  const std::vector<std::size_t> order = queued_order(log);
  std::size_t queued = 0;
  Planned* last_accepting = nullptr;
  for (Planned& p : planned) {
    if (p.kind == Kind::no_recipient) continue;
    p.facts.rcpt_accepted = 1;
    --accepted_left;
    if (queued < order.size()) {
      p.accepted_us = log.queued_us[order[queued]];
      p.facts.mail_from = queued_sender(log, order[queued]);
      ++queued;
    }
    last_accepting = &p;
  }
  if (last_accepting != nullptr && accepted_left > 0) {
    last_accepting->facts.rcpt_accepted += accepted_left;
    last_accepting->extra_accepted = accepted_left;
  }
  // Rejected RCPTs: one to each transaction that had no accepted one, the
  // rest to the first; dated by the reject lines, in order.
  std::vector<const LogReject*> dated;
  for (const LogReject& r : log.rejects) {
    if (r.command == "RCPT" && r.action.find("reject") != std::string::npos) dated.push_back(&r);
  }
  int rejected_left = c.tried("rcpt") - c.ok("rcpt");
  std::size_t next = 0;
  auto give = [&](Planned& p) {
    p.facts.rcpt_rejected += 1;
    --rejected_left;
    if (next < dated.size()) {
      p.rejected.push_back(dated[next++]);
    } else {
      p.undated_rejected += 1;
    }
  };
  for (Planned& p : planned) {
    if (p.kind == Kind::no_recipient && rejected_left > 0) give(p);
  }
  while (rejected_left > 0 && !planned.empty()) give(planned.front());
  const bool both = std::any_of(planned.begin(), planned.end(), [](const Planned& p) {
    return p.facts.rcpt_accepted > 0 && p.facts.rcpt_rejected > 0;
  });
  if (both)
    notes.push_back(
        "the log does not give the order of accepted and rejected "
        "recipients: accepted ones are shown first");
  if (n > 1 && (c.tried("rcpt") > n || c.tried("rcpt") != c.ok("rcpt"))) {
    notes.push_back("the log does not say which recipients belong to which transaction");
  }
}

void place_data(const Counts& c, std::vector<Planned>& planned) {
  int failed = (c.tried("data") - c.ok("data")) + (c.tried("bdat") > c.ok("bdat") ? 1 : 0);
  for (Planned& p : planned) {
    if (p.kind == Kind::delivered) {
      p.facts.reached_data = true;
      p.facts.delivered = true;
    } else if (p.kind == Kind::not_delivered && failed > 0) {
      p.facts.reached_data = true;  // DATA accepted, content refused or cut off
      p.content_failed = true;
      --failed;
    }
  }
}

void senders(std::vector<Planned>& planned, std::vector<std::string>& notes) {
  int unknown = 0;
  for (Planned& p : planned) {
    for (const LogReject* r : p.rejected) {
      if (r->from && !p.facts.mail_from) p.facts.mail_from = *r->from;
      if (r->code.starts_with('4')) p.facts.temp_rejected = true;
    }
    unknown += !p.facts.mail_from;
  }
  if (unknown > 0) {
    notes.push_back(
        fmt::format("the smtpd log does not name the sender of {} transaction{} "
                    "(null sender or not is unknown)",
                    unknown, unknown == 1 ? "" : "s"));
  }
}

void emit(const std::vector<Planned>& planned, std::vector<StageToken>& tokens) {
  for (const Planned& p : planned) {
    // MAIL and the first RCPT go together; the log dates the RCPT.
    std::int64_t first = p.accepted_us;
    if (first == undated && !p.rejected.empty()) first = p.rejected.front()->time_us;
    tokens.push_back({'M', first});
    for (int i = 0; i < p.facts.rcpt_accepted; ++i) {
      tokens.push_back({'R', i == 0 ? p.accepted_us : undated});
    }
    for (const LogReject* r : p.rejected) tokens.push_back({'J', r->time_us});
    for (int i = 0; i < p.undated_rejected; ++i) tokens.push_back({'J', undated});
    if (p.facts.reached_data) tokens.push_back({'D', undated});
    tokens.push_back({p.facts.delivered ? 'E' : 'A', undated});
  }
}

// Undated tokens take the time of the one before (commands follow one
// another quickly; a pause shows before the next stage the log dates);
// times never go backwards nor past `close_us`.
void date(std::vector<StageToken>& tokens, std::int64_t connect_us, std::int64_t close_us) {
  std::int64_t previous = connect_us;
  for (StageToken& t : tokens) {
    if (t.time_us == undated) t.time_us = previous;
    previous = t.time_us;
  }
  previous = connect_us;
  for (StageToken& t : tokens) {
    t.time_us = std::clamp(t.time_us, previous, std::max(previous, close_us));
    previous = t.time_us;
  }
}

// Postfix before 3.0 logs no disconnect counters, but each "QID: client="
// line is a transaction that had a recipient accepted and a queue file:
// M R D E, dated by that line, unless cleanup refused its content (M R D A)
// or the session was lost or timed out inside it (after RCPT, DATA or
// BDAT), which leaves the last one aborted. qmgr's line names the sender.
LogStages from_queue_ids(const LogView& log, std::int64_t connect_us, std::int64_t close_us) {
  LogStages out;
  const int n = std::min(static_cast<int>(log.queued_us.size()), max_count);
  if (n == 0) {
    out.notes.push_back(
        "the log has no command counters for this session: its stages "
        "between connect and end are unknown");
    return out;
  }
  const std::string& end = log.end_state;
  const bool cut_in_data = end == "DATA" || end == "BDAT";
  const bool cut_inside = cut_in_data || end == "RCPT";
  int senders_known = 0;
  for (int i = 0; i < n; ++i) {
    const bool last_cut = cut_inside && i == n - 1;
    LogTransaction t;
    t.rcpt_accepted = 1;
    t.reached_data = !last_cut || cut_in_data;
    t.delivered = !last_cut && !queued_refused(log, i);
    t.mail_from = queued_sender(log, i);
    senders_known += t.mail_from.has_value();
    out.tokens.push_back({'M', log.queued_us[i]});
    out.tokens.push_back({'R', log.queued_us[i]});
    if (t.reached_data) out.tokens.push_back({'D', undated});
    out.tokens.push_back({t.delivered ? 'E' : 'A', undated});
    out.transactions.push_back(t);
  }
  date(out.tokens, connect_us, close_us);
  out.notes.push_back(fmt::format(
      "the log has no command counters for this session (Postfix before 3.0): {} "
      "transaction{} counted from its queue ids (\"QID: client=\" lines), each taken as "
      "delivered unless cleanup refused its content or the session ended inside it; {} "
      "other recipients, rejected commands, RSET, QUIT and transactions that queued nothing "
      "are unknown",
      n, n == 1 ? "" : "s",
      senders_known == n   ? "their senders are qmgr's (or cleanup's);"
      : senders_known == 0 ? "their senders,"
                           : fmt::format("{} of their senders (qmgr logged {}),", n - senders_known,
                                         senders_known)));
  return out;
}

}  // namespace

std::optional<int> succeeded(const std::map<std::string, std::string>& counters,
                             const std::string& name) {
  auto found = counters.find(name);
  if (found == counters.end()) return std::nullopt;
  return number(std::string_view(found->second).substr(0, found->second.find('/')));
}

std::optional<int> attempted(const std::map<std::string, std::string>& counters,
                             const std::string& name) {
  auto found = counters.find(name);
  if (found == counters.end()) return std::nullopt;
  const std::size_t slash = found->second.find('/');
  return number(slash == std::string::npos ? std::string_view(found->second)
                                           : std::string_view(found->second).substr(slash + 1));
}

LogStages log_stages(const LogView& log, std::int64_t connect_us, std::int64_t close_us) {
  if (log.counters.empty()) return from_queue_ids(log, connect_us, close_us);
  LogStages out;
  const Counts c(log.counters);
  for (int i = 0; i < c.ok("helo") + c.ok("ehlo"); ++i) out.tokens.push_back({'H', undated});
  // Unknown commands reach a milter (U); a non-SMTP one ends the session first.
  const int unknown = std::max(0, c.tried("unknown") - (log.non_smtp ? 1 : 0));
  for (int i = 0; i < unknown; ++i) out.tokens.push_back({'U', undated});
  std::vector<Planned> planned = plan(c, log, out.notes);
  place_recipients(c, log, planned, out.notes);
  place_data(c, planned);
  senders(planned, out.notes);
  emit(planned, out.tokens);
  date(out.tokens, connect_us, close_us);
  for (Planned& p : planned) out.transactions.push_back(std::move(p.facts));
  return out;
}

}  // namespace smtpscope::analysis
