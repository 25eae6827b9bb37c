#include "db_forward.h"

#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "config.h"
#include "database_access.h"
#include "forward_worker.h"
#include "text_escape.h"

namespace smtpscope::cli {
namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

// The configuration with this command's options in place of its own.
Result<pg::ForwardTarget> target_of(const DbForwardOptions& options) {
  auto config = load_config_or_defaults(options.config_path);
  if (!config) return config.status();
  Config chosen = config.value();
  if (!options.to.empty()) chosen.database.url = options.to;
  if (!options.password_file.empty()) chosen.database.password_file = options.password_file;
  if (!options.host.empty()) chosen.daemon.host = options.host;
  if (chosen.database.url.empty()) {
    return Status::error("no fleet store: give --to postgresql://... or set database.url");
  }
  auto target = pg::forward_target(chosen);
  if (!target) return target.status();
  return std::move(*target.value());
}

}  // namespace

int run_db_forward(const DbForwardOptions& options) {
  auto target = target_of(options);
  if (!target) {
    std::cerr << "smtpscope: db forward: " << target.message() << '\n';
    return exit_usage;
  }
  // Upgraded first if older, as by every command; then written to (notes).
  if (auto local = open_database_at(options.database, Access::write); !local) {
    std::cerr << "smtpscope: db forward: " << local.message() << '\n';
    return exit_failure;
  }
  const std::string url = pg::display(target.value().url);
  auto worker = pg::ForwardWorker::open(options.database, 5000, std::move(target).value());
  if (!worker) {
    std::cerr << "smtpscope: db forward: " << worker.message() << '\n';
    return exit_failure;
  }
  const bool show_progress = !options.quiet && ::isatty(STDERR_FILENO);
  const auto started = std::chrono::steady_clock::now();
  Status sent = worker.value()->forward_all([show_progress](std::int64_t events) {
    if (!show_progress) return;
    std::fprintf(stderr, "\r\033[Kforwarding: %lld events", static_cast<long long>(events));
    std::fflush(stderr);
  });
  if (show_progress) std::fprintf(stderr, "\r\033[K");
  const std::int64_t events = worker.value()->forwarded_events();
  if (!sent) {
    std::cerr << "smtpscope: db forward: " << sent.message() << " (" << events
              << " events were forwarded before; run again to send the rest)\n";
    return exit_failure;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << fmt::format("forwarded {} events from {} to {} in {:.1f} s ({:.0f} events/s)\n",
                           events, printable(options.database), url, seconds,
                           seconds > 0 ? static_cast<double>(events) / seconds : 0.0);
  return 0;
}

}  // namespace smtpscope::cli
