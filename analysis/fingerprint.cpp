#include "fingerprint.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <set>

#include "event_attributes.h"

namespace smtpscope::analysis {
namespace {

std::uint32_t fnv1a(std::string_view text) {
  std::uint32_t hash = 2166136261u;
  for (unsigned char c : text) {
    hash ^= c;
    hash *= 16777619u;
  }
  return hash;
}

std::string helo_class(const SessionFacts& f) {
  static constexpr HeloQuirk order[] = {
      HeloQuirk::empty,      HeloQuirk::address_literal, HeloQuirk::bare_ip,
      HeloQuirk::localhost,  HeloQuirk::our_name,        HeloQuirk::non_fqdn,
      HeloQuirk::invalid_characters, HeloQuirk::dynamic_looking};
  for (HeloQuirk q : order) {
    if (std::find(f.quirks.begin(), f.quirks.end(), q) != f.quirks.end()) {
      return std::string(to_string(q));
    }
  }
  if (!f.helos.empty()) return "fqdn";
  // The log counted an accepted HELO/EHLO whose name no line gave.
  const int greeted = succeeded(f.log_counters, "helo").value_or(0) +
                      succeeded(f.log_counters, "ehlo").value_or(0);
  return greeted > 0 ? "?" : "none";
}

struct Sensed {
  std::set<std::string> keywords;  // upper case
  bool upper = false, lower = false;
  bool tls = false, auth = false;
  std::string mailer;
};

// ESMTP keywords (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH, NOTIFY, ORCPT)
// used on MAIL and RCPT, without their values; TLS and AUTH as the milter
// and the policy server saw them; the kept X-Mailer.
Sensed sensed(const SessionRecord& s) {
  Sensed out;
  for (const EventRecord& e : s.events) {
    if (e.source != "milter" && e.source != "policy") continue;
    const EventAttributes a(e.attributes_json);
    auto get = [&a](const char* name) { return a.text(name); };
    if (!get("{tls_version}").empty() || !get("encryption_protocol").empty()) out.tls = true;
    if (!get("{auth_type}").empty() || !get("sasl_method").empty()) out.auth = true;
    if (e.stage == "header" && out.mailer.empty()) out.mailer = e.argument.substr(0, 40);
    const std::string esmtp = get("esmtp");
    for (std::size_t start = 0; start < esmtp.size();) {
      const std::size_t end = std::min(esmtp.find(' ', start), esmtp.size());
      std::string word = esmtp.substr(start, std::min(esmtp.find('=', start), end) - start);
      for (char& c : word) {
        if (c >= 'a' && c <= 'z') {
          out.lower = true;
          c = static_cast<char>(c - 'a' + 'A');
        } else if (c >= 'A' && c <= 'Z') {
          out.upper = true;
        }
      }
      if (!word.empty()) out.keywords.insert(word);
      start = end + 1;
    }
  }
  return out;
}

std::string yes_no(bool value) { return value ? "yes" : "no"; }

// Whether the log's disconnect line counted commands (counters derived
// from other lines, auth=0/N from SASL failures, say nothing of the rest).
bool disconnect_counters(const SessionFacts& f) {
  return !f.log_counters.empty() && !f.counters_derived;
}

// What the log's counters say of a command: "yes", "failed" (tried, none
// succeeded), "no"; "?" without counters.
std::string from_counters(const SessionFacts& f, const std::string& name) {
  if (!disconnect_counters(f) && !f.log_counters.contains(name)) return "?";
  const int tried = attempted(f.log_counters, name).value_or(0);
  if (tried == 0) return "no";
  return succeeded(f.log_counters, name).value_or(0) > 0 ? "yes" : "failed";
}

std::string greeting(const SessionRecord& s, const SessionFacts& f) {
  if (s.protocol == "ESMTP") return "EHLO";
  if (s.protocol == "SMTP") return "HELO";
  if (from_counters(f, "ehlo") != "no" && from_counters(f, "ehlo") != "?") return "EHLO";
  if (from_counters(f, "helo") != "no" && from_counters(f, "helo") != "?") return "HELO";
  return disconnect_counters(f) ? "none" : "?";
}

// TLS and AUTH: the milter's or policy server's word when they saw it,
// else the log's. Whether the client tries is its dialect; whether it
// succeeds (a password, a certificate) is circumstance and a pattern's
// business, so starttls=0/1 and auth=0/1 are "yes" too.
std::string merged(bool sensed, const std::string& logged) {
  return sensed || logged == "yes" || logged == "failed" ? "yes" : "no";
}

std::string body(const SessionFacts& f) {
  if (!disconnect_counters(f)) return "?";
  if (attempted(f.log_counters, "bdat").value_or(0) > 0) return "BDAT";
  if (attempted(f.log_counters, "data").value_or(0) > 0) return "DATA";
  return "-";
}

std::string ending(const SessionFacts& f) {
  if (f.end == "quit") return "quit";
  if (f.end == "lost" || f.end == "timeout" || f.end == "error-limit") return "drop";
  return "?";
}

}  // namespace

std::string Fingerprint::readable() const {
  std::string out;
  for (const auto& [name, value] : features) {
    if (!out.empty()) out += ' ';
    out += name + "=" + value;
  }
  if (!later.empty()) out += " |";
  for (const auto& [name, value] : later) out += " " + name + "=" + value;
  return out;
}

Fingerprint fingerprint_of(const SessionRecord& s, const SessionFacts& f) {
  const Sensed seen = sensed(s);
  const bool reset_after_rcpt = f.stages.find("R A") != std::string::npos ||
                                f.stages.find("R +") != std::string::npos;
  Fingerprint fp;
  fp.features = {
      {"greeting", greeting(s, f)},
      {"helo", helo_class(f)},
      {"esmtp", seen.keywords.empty() ? "-" : fmt::format("{}", fmt::join(seen.keywords, ","))},
      {"esmtp_case", seen.upper && seen.lower ? "mixed" : seen.lower ? "lower"
                     : seen.upper                                    ? "upper"
                                                                     : "-"},
      {"tls", merged(seen.tls, from_counters(f, "starttls"))},
      {"auth", merged(seen.auth, from_counters(f, "auth"))},
      {"rset_after_rcpt", yes_no(reset_after_rcpt && f.aborted > 0)},
  };
  fp.id = fmt::format("{:08x}", fnv1a(fp.readable()));
  fp.later = {{"body", body(f)},
              {"end", ending(f)},
              {"mailer", seen.mailer.empty() ? "-" : seen.mailer}};
  return fp;
}

}  // namespace smtpscope::analysis
