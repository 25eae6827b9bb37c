#include "fingerprint.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>

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
  return f.helos.empty() ? "none" : "fqdn";
}

// ESMTP keywords (SIZE, BODY, SMTPUTF8, RET, ENVID, AUTH, NOTIFY, ORCPT)
// used on MAIL and RCPT, without their values.
std::string esmtp_keywords(const SessionRecord& s, bool& tls, bool& auth, std::string& mailer) {
  std::set<std::string> keywords;
  for (const EventRecord& e : s.events) {
    if (e.source != "milter" && e.source != "policy") continue;
    const auto a = nlohmann::json::parse(e.attributes_json, nullptr, false);
    if (!a.is_object()) continue;
    auto get = [&a](const char* name) {
      return a.contains(name) && a[name].is_string() ? a[name].get<std::string>() : "";
    };
    if (!get("{tls_version}").empty() || !get("encryption_protocol").empty()) tls = true;
    if (!get("{auth_type}").empty() || !get("sasl_method").empty()) auth = true;
    if (e.stage == "header" && mailer.empty()) mailer = e.argument.substr(0, 40);
    const std::string esmtp = get("esmtp");
    for (std::size_t start = 0; start < esmtp.size();) {
      const std::size_t end = std::min(esmtp.find(' ', start), esmtp.size());
      const std::string word = esmtp.substr(start, end - start);
      keywords.insert(word.substr(0, word.find('=')));
      start = end + 1;
    }
  }
  return keywords.empty() ? "-" : fmt::format("{}", fmt::join(keywords, ","));
}

std::string yes_no(bool value) { return value ? "yes" : "no"; }

}  // namespace

std::string Fingerprint::readable() const {
  std::string out;
  for (const auto& [name, value] : features) {
    if (!out.empty()) out += ' ';
    out += name + "=" + value;
  }
  return out;
}

Fingerprint fingerprint_of(const SessionRecord& s, const SessionFacts& f) {
  bool tls = false, auth = false;
  std::string mailer;
  const std::string keywords = esmtp_keywords(s, tls, auth, mailer);
  const std::string greeting = s.protocol == "ESMTP" ? "EHLO" : s.protocol == "SMTP" ? "HELO" : "?";
  const bool reset_after_rcpt = f.stages.find("R A") != std::string::npos ||
                                f.stages.find("R +") != std::string::npos;
  Fingerprint fp;
  fp.features = {
      {"greeting", greeting},
      {"helo", helo_class(f)},
      {"esmtp", keywords},
      {"tls", yes_no(tls)},
      {"auth", yes_no(auth)},
      {"rset_after_rcpt", yes_no(reset_after_rcpt && f.aborted > 0)},
      {"mailer", mailer.empty() ? "-" : mailer},
  };
  fp.id = fmt::format("{:08x}", fnv1a(fp.readable()));
  return fp;
}

}  // namespace smtpscope::analysis
