// smtpscope-milter: records every SMTP stage Postfix shows a milter into the
// smtpscope database. Exit codes: 0 clean stop, 1 runtime failure,
// 2 usage or configuration error.
#include <CLI/CLI.hpp>
#include <libmilter/mfapi.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>

#include "config.h"
#include "daemon.h"
#include "libmilter_glue.h"
#include "logging.h"
#include "metrics_http.h"
#include "metrics_registry.h"
#include "analysis_worker.h"
#include "forward_worker.h"
#include "store.h"

namespace {

using namespace smtpscope;

constexpr int exit_failure = 1;
constexpr int exit_config = 2;  // also: refusing to run as root

std::optional<std::string> unix_socket_path(const std::string& spec) {
  for (std::string_view prefix : {"unix:", "local:"}) {
    if (spec.starts_with(prefix)) return spec.substr(prefix.size());
  }
  return std::nullopt;
}

Status open_listener(const Config::Milter& config) {
  if (smfi_setconn(const_cast<char*>(config.socket.c_str())) != MI_SUCCESS) {
    return Status::error("milter.socket \"" + config.socket + "\" is not a valid socket spec");
  }
  const auto path = unix_socket_path(config.socket);
  if (path) {
    const auto parent = std::filesystem::path(*path).parent_path();
    if (!parent.empty() && !std::filesystem::is_directory(parent)) {
      return Status::error("socket directory " + parent.string() + " does not exist");
    }
  }
  if (smfi_opensocket(true) != MI_SUCCESS) {
    return Status::error("cannot listen on " + config.socket +
                         " (in use, or no permission; inet sockets are inet:PORT@HOST)");
  }
  if (path && ::chmod(path->c_str(), config.socket_mode) != 0) {
    return Status::error("chmod " + *path + ": " + std::strerror(errno));
  }
  return Status::ok();
}

int run(const std::shared_ptr<const Config>& config, bool foreground) {
  // From the start: a SIGTERM during start-up waits for libmilter's signal
  // thread (a sigwait() in smfi_main) and stops the milter cleanly once the
  // database is ready, instead of killing it halfway through creating it.
  // The store's writer thread inherits the mask and never takes them.
  block_stop_signals();
  SystemClock clock;
  smfiDesc description = milter::milter_description();
  if (smfi_register(description) != MI_SUCCESS) {
    spdlog::critical("smfi_register failed");
    return exit_failure;
  }
  smfi_settimeout(config->milter.timeout_s);
  if (Status listening = open_listener(config->milter); !listening) {
    spdlog::critical("{}", listening.message());
    return exit_failure;
  }
  // The metrics endpoint is bound now (a port below 1024 needs root, and a
  // bad address is reported to whoever starts us); it serves once in the
  // background.
  MetricsRegistry metrics;
  std::unique_ptr<MetricsHttpServer> metrics_server;
  if (!config->metrics.milter_listen.empty()) {
    auto bound = MetricsHttpServer::bind(config->metrics.milter_listen,
                                         [&metrics] { return metrics.render(); });
    if (!bound) {
      spdlog::critical("metrics.milter_listen: {}", bound.message());
      return exit_config;
    }
    metrics_server = std::move(bound).value();
  }
  // Bound as whoever started us; from here on as the configured user.
  const auto socket_path = unix_socket_path(config->milter.socket);
  if (Status dropped = drop_privileges(privilege_options(*config),
                                       socket_path ? std::vector<std::string>{*socket_path}
                                                   : std::vector<std::string>{});
      !dropped) {
    spdlog::critical("{}", dropped.message());
    return exit_config;
  }
  // Check the database (as that user) before going to the background, so a
  // bad path or permission is reported to the person starting the daemon.
  if (auto db = open_database(config->database.path, config->database.busy_timeout_ms); !db) {
    spdlog::critical("{}", db.message());
    return exit_failure;
  }
  if (auto fleet = pg::forward_target(*config); !fleet) {
    spdlog::critical("{}", fleet.message());
    return exit_config;
  }
  if (!foreground && ::daemon(0, 0) != 0) {
    spdlog::critical("cannot go to the background: {}", std::strerror(errno));
    return exit_failure;
  }
  if (Status written = write_pid_file(config->milter.pid_file); !written) {
    spdlog::critical("{}", written.message());
    return exit_failure;
  }
  tune_allocator();
  StoreOptions options = store_options(*config, "milter");
  if (metrics_server) options.metrics = &metrics;
  // Ended sessions are analysed in the background, off the Postfix path.
  auto analyser = analysis::AnalysisWorker::from_config(*config);
  if (!analyser) {
    spdlog::critical("{}", analyser.message());
    return exit_failure;
  }
  auto store = Store::open(std::move(options), clock);
  if (!store) {
    spdlog::critical("{}", store.message());
    return exit_failure;
  }
  // With a fleet store, recorded rows are forwarded in the background.
  auto forwarder = pg::ForwardWorker::from_config(*config);
  if (!forwarder) {
    spdlog::critical("{}", forwarder.message());
    return exit_config;
  }
  milter::Recorder recorder(config, clock, *store.value());
  if (metrics_server) {
    recorder.export_metrics(metrics);
    if (forwarder.value()) forwarder.value()->export_metrics(metrics);
    metrics_server->start();
    spdlog::info("milter event=metrics listen={} port={}", config->metrics.milter_listen,
                 metrics_server->port());
  }
  milter::install_recorder(&recorder);
  spdlog::info("milter event=started version={} socket={} database={}", SMTPSCOPE_VERSION,
               config->milter.socket, config->database.path);
  const int result = smfi_main();
  if (metrics_server) metrics_server->stop();  // its callbacks read the store
  store.value()->stop();
  if (analyser.value()) analyser.value()->stop();  // after the store: its last events too
  if (forwarder.value()) forwarder.value()->stop();  // and their analysis
  const StoreStats stats = store.value()->stats();
  spdlog::info("milter event=stopped enqueued={} written={} dropped={} lost={} failed_batches={}",
               stats.enqueued, stats.written, stats.dropped, stats.lost, stats.failed_batches);
  if (!config->milter.pid_file.empty()) std::filesystem::remove(config->milter.pid_file);
  return result == MI_SUCCESS || milter::stop_was_requested() ? 0 : exit_failure;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "smtpscope-milter: records every SMTP stage Postfix passes to a milter (connect, HELO, "
      "MAIL, RCPT, DATA, kept headers, end of message, abort, unknown commands, close) into the "
      "smtpscope SQLite database. It never rejects or modifies mail: it answers every stage "
      "at once and drops events rather than block Postfix.",
      "smtpscope-milter"};
  std::string config_path = "/etc/smtpscope/smtpscope.yaml";
  bool foreground = false;
  bool check_only = false;
  app.add_option("-c,--config", config_path, "configuration file (YAML)")->capture_default_str();
  app.add_flag("-f,--foreground", foreground, "stay in the foreground (for systemd and tests)");
  app.add_flag("--check-config", check_only, "validate the configuration and exit");
  app.set_version_flag("-V,--version", std::string("smtpscope-milter ") + SMTPSCOPE_VERSION);
  app.footer(
      "Postfix: smtpd_milters = unix:/run/smtpscope/milter.sock, milter_default_action = accept "
      "(see contrib/postfix/main.cf).\nSignals: SIGTERM or SIGINT stop accepting connections, "
      "commit every queued event and exit 0.\nExit status: 0 clean stop, 1 runtime failure, "
      "2 usage or configuration error.");
  CLI11_PARSE(app, argc, argv);

  auto loaded = load_config(config_path);
  if (!loaded) {
    std::cerr << "smtpscope-milter: " << loaded.message() << '\n';
    return exit_config;
  }
  if (check_only) {
    if (auto fleet = pg::forward_target(loaded.value()); !fleet) {
      std::cerr << "smtpscope-milter: " << fleet.message() << '\n';
      return exit_config;
    }
    std::cout << config_path << ": ok\n";
    return 0;
  }
  auto config = std::make_shared<const Config>(std::move(loaded).value());
  if (Status logging = setup_logging("smtpscope-milter", config->logging.level,
                                     config->logging.target);
      !logging) {
    std::cerr << "smtpscope-milter: " << logging.message() << '\n';
    return exit_config;
  }
  return run(config, foreground);
}
