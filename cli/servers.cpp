#include "servers.h"

#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <tuple>
#include <nlohmann/json.hpp>
#include <vector>

#include "database_access.h"
#include "sql_dialect.h"
#include "text_escape.h"

namespace smtpscope::cli {
namespace {

// A lost connection or timeout is logged on its own line, or as the reason
// of a delivery status (as for verification probes); both count.
struct Server {
  std::string addr, name;
  std::int64_t port = 0;  // 0 when the log did not say
  std::int64_t events = 0, sent = 0, failed = 0, probes = 0, probes_failed = 0, lost = 0;
  std::int64_t deferred = 0, bounced = 0;  // of the failed
  std::vector<std::pair<std::string, std::int64_t>> lost_states;  // most first
  std::string verdict;
  bool pipelining_trouble = false;
};

std::string judge(Server& s) {
  if (s.lost == 0 && s.failed == 0) return "no failures";
  const auto& top = s.lost_states.empty() ? std::pair<std::string, std::int64_t>{"", 0}
                                          : s.lost_states.front();
  if (top.second >= 2 && top.second * 2 >= s.lost &&
      (top.first == "RCPT TO" || top.first == "MAIL FROM") && s.probes_failed > 0) {
    s.pipelining_trouble = true;
    return fmt::format(
        "connections are lost while sending {} ({} of {}), and {} of {} address verification "
        "probes failed: the server or a middlebox in front of it mishandles the pipelined "
        "MAIL/RCPT/RSET/QUIT group that probes send. Workarounds: turn off pipelining for it "
        "(smtp_discard_ehlo_keyword_address_maps = hash:/etc/postfix/no_pipelining with the line "
        "\"{} pipelining\"), or exempt its domain from sender/recipient verification; confirm with "
        "`smtpscope probe {}`",
        top.first, top.second, s.lost, s.probes_failed, s.probes, s.addr, s.addr);
  }
  if (s.lost > 0) {
    return fmt::format("{} lost connections or timeouts, most while sending {}", s.lost,
                       top.first.empty() ? "?" : top.first);
  }
  return fmt::format("{} failed deliveries ({} deferred, {} bounced){}", s.failed, s.deferred,
                     s.bounced,
                     s.addr.empty() ? ", never connected: the name did not resolve" : "");
}

}  // namespace

int run_servers(const StoreLocation& database, const std::string& format) {
  auto db = open_store(database, Access::read);
  if (!db) {
    std::cerr << "smtpscope: " << db.message() << '\n';
    return 1;
  }
  auto rows = db.value()->prepare(
      "SELECT server_addr, coalesce(max(server_name), ''), coalesce(server_port, 0), count(*),"
      " count(*) FILTER (WHERE kind = 'status' AND status = 'sent'),"
      " count(*) FILTER (WHERE kind = 'status' AND status IN ('deferred', 'bounced', 'undeliverable')),"
      " count(*) FILTER (WHERE probe = 1),"
      " count(*) FILTER (WHERE probe = 1 AND status = 'undeliverable'),"
      " count(*) FILTER (WHERE (kind IN ('lost', 'timeout') OR (kind = 'status' AND (reason LIKE 'lost connection%' OR reason LIKE 'conversation with % timed out%')))),"
      " count(*) FILTER (WHERE kind = 'status' AND status = 'deferred'),"
      " count(*) FILTER (WHERE kind = 'status' AND status = 'bounced')"
      // Deliveries to a name that did not resolve have no address: one row per name.
      " FROM remote_events GROUP BY server_addr, coalesce(server_port, 0),"
      " CASE WHEN server_addr = '' THEN server_name END");
  auto states = db.value()->prepare(
      "SELECT coalesce(state, '?'), count(*) FROM remote_events WHERE server_addr = ?1"
      " AND coalesce(server_port, 0) = ?2 AND (?1 <> '' OR server_name" +
      std::string(sql::null_safe_equals(db.value()->dialect())) + "?3)"
      " AND (kind IN ('lost', 'timeout') OR (kind = 'status' AND (reason LIKE 'lost connection%' OR reason LIKE 'conversation with % timed out%'))) GROUP BY state ORDER BY count(*) DESC, " +
      sql::bytewise(db.value()->dialect(), "state"));
  if (!rows || !states) {
    std::cerr << "smtpscope: " << (!rows ? rows.message() : states.message()) << '\n';
    return 1;
  }
  std::vector<Server> servers;
  auto row = rows.value().step();
  for (; row && row.value(); row = rows.value().step()) {
    auto& q = rows.value();
    servers.push_back(Server{q.column_text(0), q.column_text(1), q.column_int(2), q.column_int(3),
                             q.column_int(4), q.column_int(5), q.column_int(6), q.column_int(7),
                             q.column_int(8), q.column_int(9), q.column_int(10), {}, "", false});
  }
  if (!row) {
    std::cerr << "smtpscope: " << row.message() << '\n';
    return 1;
  }
  // Ties in the order below keep this one, the same on every backend.
  std::sort(servers.begin(), servers.end(), [](const Server& a, const Server& b) {
    return std::tie(a.addr, a.port, a.name) < std::tie(b.addr, b.port, b.name);
  });
  for (auto& s : servers) {
    auto& q = states.value();
    q.bind(1, s.addr).bind(2, s.port).bind(3, s.name);
    auto state = q.step();
    for (; state && state.value(); state = q.step()) {
      s.lost_states.emplace_back(q.column_text(0), q.column_int(1));
    }
    q.reset();
    if (!state) {
      std::cerr << "smtpscope: " << state.message() << '\n';
      return 1;
    }
    s.verdict = judge(s);
  }
  std::stable_sort(servers.begin(), servers.end(), [](const Server& a, const Server& b) {
    if (a.pipelining_trouble != b.pipelining_trouble) return a.pipelining_trouble;
    return a.lost + a.failed > b.lost + b.failed;
  });
  if (format == "json") {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : servers) {
      nlohmann::json lost = nlohmann::json::object();
      for (const auto& [state, n] : s.lost_states) lost[state] = n;
      list.push_back({{"server", s.addr}, {"port", s.port}, {"name", s.name}, {"sent", s.sent},
                      {"failed", s.failed}, {"deferred", s.deferred}, {"bounced", s.bounced},
                      {"probes", s.probes}, {"probes_failed", s.probes_failed},
                      {"lost_or_timeout", s.lost}, {"lost_while", lost},
                      {"pipelining_trouble", s.pipelining_trouble}, {"verdict", s.verdict}});
    }
    std::cout << nlohmann::json{{"servers", list}}.dump(2, ' ', false,
                                                        nlohmann::json::error_handler_t::replace)
              << '\n';
    return 0;
  }
  // The counts first, then the server whole: names of one provider's MX
  // hosts differ only at the end.
  std::cout << fmt::format("{:>6} {:>7} {:>7} {:>14} {:>6}  {}\n", "SENT", "FAILED", "PROBES",
                           "PROBES FAILED", "LOST", "SERVER");
  for (const auto& s : servers) {
    std::cout << fmt::format("{:>6} {:>7} {:>7} {:>14} {:>6}  {}\n  {}\n", s.sent, s.failed,
                             s.probes, s.probes_failed, s.lost,
                             printable(s.name + "[" + s.addr + "]" +
                                           (s.port ? ":" + std::to_string(s.port) : ""), 600),
                             printable(s.verdict, 2000));
  }
  if (servers.empty()) std::cout << "no remote servers in the log read so far\n";
  return 0;
}

}  // namespace smtpscope::cli
