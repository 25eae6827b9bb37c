// smtpscope-policyd: a Postfix policy delegation server that records every
// request into the smtpscope database and answers DUNNO unless the rules say
// otherwise. Exit codes: 0 clean stop, 1 runtime failure, 2 usage or
// configuration error (including a bad rules file at start).
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "client_history.h"
#include "config.h"
#include "daemon.h"
#include "logging.h"
#include "metrics_http.h"
#include "metrics_registry.h"
#include "policy_service.h"
#include "server.h"
#include "analysis_worker.h"
#include "forward_worker.h"
#include "store.h"

namespace {

using namespace smtpscope;
using namespace smtpscope::policy;

constexpr int exit_failure = 1;
constexpr int exit_config = 2;

Result<std::shared_ptr<const RuleSet>> rules_from(const std::string& path) {
  if (path.empty()) return std::make_shared<const RuleSet>();
  auto loaded = load_rules(path);
  if (!loaded) return loaded.status();
  return std::make_shared<const RuleSet>(std::move(loaded).value());
}

Result<ServerOptions> server_options(const Config::Policy& policy) {
  ServerOptions options;
  for (const auto& text : policy.listen) {
    auto spec = parse_listen_spec(text);
    if (!spec) return spec.status().context("policy.listen");
    options.listen.push_back(spec.value());
  }
  if (options.listen.empty()) return Status::error("policy.listen: no listener configured");
  options.socket_mode = policy.socket_mode;
  options.limits = Limits{policy.max_line_bytes, policy.max_request_bytes, policy.max_attributes};
  options.idle_timeout = std::chrono::seconds(policy.idle_timeout_s);
  options.request_timeout = std::chrono::seconds(policy.request_timeout_s);
  options.max_connections = policy.max_connections;
  options.max_output_bytes = policy.max_output_bytes;
  return options;
}

// Every connection is a descriptor: without enough of them accept() fails
// with EMFILE and new clients wait forever. Raises the limit, or lowers
// max_connections to what fits (and says so) so the extra ones are refused.
Status fit_connections_to_file_limit(ServerOptions& options) {
  constexpr std::size_t reserved = 64;  // listeners, database files, logging
  const std::size_t limit = raise_open_file_limit(options.max_connections + reserved);
  if (limit >= options.max_connections + reserved) return Status::ok();
  const std::size_t fitting = limit > reserved + 1 ? limit - reserved : 1;
  const std::string message = fmt::format(
      "policy.max_connections {} lowered to {}: the open file limit is {} (raise LimitNOFILE)",
      options.max_connections, fitting, limit);
  options.max_connections = fitting;
  return Status::error(message);
}

bool spawn_mode(const Config& config) {
  return config.policy.listen.size() == 1 && config.policy.listen.front() == "stdio";
}

int run(const Config& config, bool foreground) {
  // From the start and before any thread: the server reads them through a
  // signalfd, so a SIGTERM during start-up stops it cleanly once it serves.
  block_stop_signals();
  auto options = server_options(config.policy);
  if (!options) {
    spdlog::critical("{}", options.message());
    return exit_config;
  }
  auto rules = rules_from(config.policy.rules_file);
  if (!rules) {
    spdlog::critical("{}", rules.message());
    return exit_config;
  }
  if (Status fits = fit_connections_to_file_limit(options.value()); !fits) {
    spdlog::warn("{}", fits.message());
  }
  // The metrics endpoint is bound as whoever starts us and serves once in
  // the background.
  MetricsRegistry metrics;
  std::unique_ptr<MetricsHttpServer> metrics_server;
  if (!config.metrics.policy_listen.empty()) {
    auto bound = MetricsHttpServer::bind(config.metrics.policy_listen,
                                         [&metrics] { return metrics.render(); });
    if (!bound) {
      spdlog::critical("metrics.policy_listen: {}", bound.message());
      return exit_config;
    }
    metrics_server = std::move(bound).value();
  }
  // Everything from here on runs as the configured user (the listeners are
  // created below, so they belong to it).
  if (Status dropped = drop_privileges(privilege_options(config), {}); !dropped) {
    spdlog::critical("{}", dropped.message());
    return exit_config;
  }
  if (auto db = open_database(config.database.path, config.database.busy_timeout_ms); !db) {
    spdlog::critical("{}", db.message());
    return exit_failure;
  }
  if (auto fleet = pg::forward_target(config); !fleet) {
    spdlog::critical("{}", fleet.message());
    return exit_config;
  }
  SystemClock clock;
  DatabaseHistory history(config.database.path, std::chrono::seconds(config.policy.history_cache_s));
  tune_allocator();
  if (!foreground && !spawn_mode(config) && ::daemon(0, 0) != 0) {
    spdlog::critical("cannot go to the background: {}", std::strerror(errno));
    return exit_failure;
  }
  if (Status written = write_pid_file(config.policy.pid_file); !written) {
    spdlog::critical("{}", written.message());
    return exit_failure;
  }
  StoreOptions store_opts = store_options(config, "policy");
  if (metrics_server) {
    store_opts.metrics = &metrics;
    options.value().connections_open =
        &metrics.gauge("smtpscope_sessions_open",
                       "SMTP sessions open now, as the sensor sees them (policy: connections "
                       "from Postfix).",
                       {{"source", "policy"}});
  }
  // Ended sessions are analysed in the background, off the Postfix path;
  // not by spawn(8)'s short-lived instances (one per connection).
  auto analyser = spawn_mode(config) ? Result<std::unique_ptr<analysis::AnalysisWorker>>(nullptr)
                                     : analysis::AnalysisWorker::from_config(config);
  if (!analyser) {
    spdlog::critical("{}", analyser.message());
    return exit_failure;
  }
  auto store = Store::open(std::move(store_opts), clock);
  if (!store) {
    spdlog::critical("{}", store.message());
    return exit_failure;
  }
  // With a fleet store, recorded rows are forwarded in the background (not
  // by spawn(8)'s instances either: the milter's or `smtpscope db forward`).
  auto forwarder = spawn_mode(config) ? Result<std::unique_ptr<pg::ForwardWorker>>(nullptr)
                                      : pg::ForwardWorker::from_config(config);
  if (!forwarder) {
    spdlog::critical("{}", forwarder.message());
    return exit_config;
  }
  PolicyService service(clock, *store.value(), config.policy.max_value_bytes, rules.value(),
                        &history);
  if (metrics_server) {
    service.export_metrics(metrics);
    if (forwarder.value()) forwarder.value()->export_metrics(metrics);
  }
  auto server = Server::create(options.value(), service);
  if (!server) {
    spdlog::critical("{}", server.message());
    return exit_failure;
  }
  if (metrics_server) {
    metrics_server->start();
    spdlog::info("policy event=metrics listen={} port={}", config.metrics.policy_listen,
                 metrics_server->port());
  }
  spdlog::info("policy event=started version={} listen={} rules={} database={}",
               SMTPSCOPE_VERSION, fmt::join(config.policy.listen, ","),
               rules.value()->rules.size(), config.database.path);
  const std::string rules_path = config.policy.rules_file;
  Status served = server.value()->run([&] {
    auto reloaded = rules_from(rules_path);
    if (!reloaded) {
      spdlog::error("policy event=reload-refused keeping={} error=\"{}\"",
                    "previous rules", reloaded.message());
      return;
    }
    service.replace_rules(reloaded.value());
    spdlog::info("policy event=reloaded rules={}", reloaded.value()->rules.size());
  });
  if (metrics_server) metrics_server->stop();  // its callbacks read the store
  store.value()->stop();
  if (analyser.value()) analyser.value()->stop();  // after the store: its last events too
  if (forwarder.value()) forwarder.value()->stop();  // and their analysis
  const ServerStats s = server.value()->stats();
  const StoreStats st = store.value()->stats();
  spdlog::info("policy event=stopped requests={} protocol_errors={} timeouts={} unread={} "
               "enqueued={} written={} dropped={} lost={}",
               s.requests, s.protocol_errors, s.timeouts, s.unread, st.enqueued, st.written,
               st.dropped, st.lost);
  if (!config.policy.pid_file.empty()) std::filesystem::remove(config.policy.pid_file);
  if (!served) {
    spdlog::critical("{}", served.message());
    return exit_failure;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "smtpscope-policyd: a Postfix policy delegation server (check_policy_service) that "
      "records every request (protocol state, SMTP or ESMTP, HELO, sender, recipient, TLS and "
      "SASL attributes) into the smtpscope database, joined to the milter's sessions, and "
      "answers DUNNO unless the configured rules say otherwise.",
      "smtpscope-policyd"};
  std::string config_path = "/etc/smtpscope/smtpscope.yaml";
  bool foreground = false;
  bool check_only = false;
  app.add_option("-c,--config", config_path, "configuration file (YAML)")->capture_default_str();
  app.add_flag("-f,--foreground", foreground, "stay in the foreground (for systemd and tests)");
  app.add_flag("--check-config", check_only, "validate the configuration and rules, then exit");
  app.set_version_flag("-V,--version", std::string("smtpscope-policyd ") + SMTPSCOPE_VERSION);
  app.footer(
      "Postfix main.cf: smtpd_recipient_restrictions = ..., check_policy_service "
      "unix:/run/smtpscope/policy.sock (see contrib/postfix/).\n"
      "spawn(8): set policy.listen to [stdio]; see contrib/postfix/master.cf.\n"
      "Signals: SIGTERM/SIGINT stop and commit every recorded request; SIGHUP reloads the rules "
      "(a bad file is refused and the previous rules stay).\n"
      "Exit status: 0 clean stop, 1 runtime failure, 2 usage or configuration error.");
  CLI11_PARSE(app, argc, argv);

  auto loaded = load_config(config_path);
  if (!loaded) {
    std::cerr << "smtpscope-policyd: " << loaded.message() << '\n';
    return exit_config;
  }
  const Config& config = loaded.value();
  if (check_only) {
    auto options = server_options(config.policy);
    auto rules = rules_from(config.policy.rules_file);
    auto fleet = pg::forward_target(config);
    if (!options || !rules || !fleet) {
      std::cerr << "smtpscope-policyd: "
                << (!options ? options.message() : !rules ? rules.message() : fleet.message())
                << '\n';
      return exit_config;
    }
    std::cout << config_path << ": ok (" << rules.value()->rules.size() << " rules)\n";
    return 0;
  }
  // In spawn mode stdout is the protocol: logs must go elsewhere (stderr or
  // syslog, as configured).
  if (Status logging = setup_logging("smtpscope-policyd", config.logging.level,
                                     config.logging.target);
      !logging) {
    std::cerr << "smtpscope-policyd: " << logging.message() << '\n';
    return exit_config;
  }
  return run(config, foreground);
}
