#include "ingest_command.h"

#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <vector>

#include "analysis_worker.h"
#include "forward_worker.h"
#include "client_population.h"
#include "config.h"
#include "ingester.h"
#include "syslog_line.h"
#include "text_escape.h"

namespace smtpscope::cli {
namespace {

std::atomic<bool> stop_requested{false};
static_assert(std::atomic<bool>::is_always_lock_free);  // safe in a signal handler

extern "C" void request_stop(int) { stop_requested = true; }

void install_stop_handlers() {
  struct sigaction action{};
  action.sa_handler = request_stop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

std::string rate(std::uint64_t lines, double seconds) {
  const double per_second = seconds > 0 ? static_cast<double>(lines) / seconds : 0;
  return per_second >= 1e6   ? fmt::format("{:.2f}M", per_second / 1e6)
         : per_second >= 1e3 ? fmt::format("{:.0f}k", per_second / 1e3)
                             : fmt::format("{:.0f}", per_second);
}

// The analysis beside the reading, on the second core: a pass after each
// committed batch, in order and read before it writes, so what it concludes
// is what one pass at the end would, and the reading waits for it only
// while its rows are written (a write lock in the process, not SQLite's
// sleeping busy handler). Nothing when it cannot start: the pass at the end
// does all.
std::unique_ptr<analysis::AnalysisWorker> analysis_beside(const IngestCommand& command,
                                                          const analysis::AnalysisRules& rules,
                                                          std::mutex& write_lock) {
  analysis::AnalysisWorker::Options options;
  options.pass.in_order = true;
  options.pass.read_first = true;
  options.pass.write_lock = &write_lock;
  options.lowest_priority = false;
  auto worker = analysis::AnalysisWorker::start(command.database, command.busy_timeout_ms, rules,
                                                std::chrono::seconds(1), options);
  return worker ? std::move(worker).value() : nullptr;
}

// The sessions the log ended, analysed once all is read (a progress bar on
// a terminal); a failure is reported but loses nothing: the next command
// or ingest analyses them.
void analyse_ended_sessions(const IngestCommand& command, const analysis::AnalysisRules& rules,
                            bool show_progress) {
  auto db = analysis::open_for_analysis(command.database, command.busy_timeout_ms);
  auto done = db ? analysis::analyse_pending(*db.value(), rules, false,
                                             show_progress ? progress_bar("analysing") : nullptr)
                 : Result<std::int64_t>(db.status());
  if (!done) {
    std::fprintf(stderr, "smtpscope: warning: sessions read but not analysed yet (the next "
                         "command analyses them): %s\n", done.message().c_str());
  }
}

// What the summary line's malformed count holds besides broken lines.
void print_malformed_details(const std::string& file, const ingest::IngestCounts& c,
                             std::size_t line_limit) {
  if (c.too_long > 0) {
    std::printf("%s: %llu malformed: longer than %zu bytes (ingest.max_line_bytes), skipped\n",
                file.c_str(), static_cast<unsigned long long>(c.too_long), line_limit);
  }
  if (c.out_of_range > 0) {
    std::printf("%s: %llu malformed: dated before 1990 or more than %lld days ahead, refused; "
                "the first: \"%s\"\n",
                file.c_str(), static_cast<unsigned long long>(c.out_of_range),
                static_cast<long long>(ingest::log_time_lead_us / 86'400'000'000),
                printable(c.first_out_of_range, 300).c_str());
  }
  if (c.bad_time > 0) {
    std::printf("%s: %llu malformed: a time in no form smtpscope reads; the first: \"%s\"\n",
                file.c_str(), static_cast<unsigned long long>(c.bad_time),
                printable(c.first_bad_time, 300).c_str());
  }
}

// Every line had a time smtpscope cannot read: the wrong file, or a format
// to add. Names what was seen and what is accepted.
bool unreadable_times(const std::string& file, const ingest::IngestCounts& c) {
  if (c.bad_time == 0 || c.bad_time + c.skipped < c.lines || c.parsed > 0) return false;
  std::fprintf(stderr,
               "smtpscope: %s: no line has a timestamp smtpscope reads; they begin like \"%s\". "
               "Accepted: %s\n",
               file.c_str(), printable(c.first_bad_time.substr(0, 40), 60).c_str(),
               ingest::accepted_time_formats);
  return true;
}

// The fleet store this ingest forwards to, if any: the command's URL, else
// the configuration's.
Result<std::optional<pg::ForwardTarget>> fleet_of(const IngestCommand& command,
                                                  const Config& config) {
  Config chosen = config;
  if (!command.forward_to.empty()) chosen.database.url = command.forward_to;
  if (!command.password_file.empty()) chosen.database.password_file = command.password_file;
  return pg::forward_target(chosen);
}

// Sends what is left to the fleet store; a failure leaves it in the file.
bool forward_the_rest(pg::ForwardWorker& forwarder, const pg::ForwardTarget& target) {
  Status sent = forwarder.forward_all();
  if (!sent) {
    std::fprintf(stderr,
                 "smtpscope: %s; the rows stay in this host's file for the next ingest or "
                 "`smtpscope db forward`\n",
                 sent.message().c_str());
    return false;
  }
  std::printf("forwarded %lld events to %s\n",
              static_cast<long long>(forwarder.forwarded_events()),
              pg::display(target.url).c_str());
  return true;
}

}  // namespace

int run_ingest(const IngestCommand& command) {
  const auto config = load_config_or_defaults(command.config_path);
  auto rules = config ? analysis::load_rules(config.value().analysis.patterns_file)
                      : Result<analysis::AnalysisRules>(config.status());
  if (!rules) {
    std::fprintf(stderr, "smtpscope: %s\n", rules.message().c_str());
    return 2;
  }
  auto fleet = fleet_of(command, config.value());
  if (!fleet) {
    std::fprintf(stderr, "smtpscope: %s\n", fleet.message().c_str());
    return 2;
  }
  std::unique_ptr<pg::ForwardWorker> forwarder;  // with a fleet store
  const std::size_t line_limit = config.value().ingest.max_line_bytes;
  const int analysis_interval_ms = config.value().analysis.interval_ms;
  std::unique_ptr<analysis::AnalysisWorker> worker;  // --follow: analyses as sessions end
  std::mutex write_lock;                             // the reading's and the analysis's writes
  std::unique_ptr<analysis::AnalysisWorker> beside;  // not following: analyses while reading
  bool read_any = false;
  install_stop_handlers();
  const bool show_progress = !command.quiet && ::isatty(STDERR_FILENO);
  int failures = 0;
  const ingest::JournalSelection journal{command.journal_path, command.journal_unit};
  const std::vector<std::string> sources =
      !command.journal                ? command.files
      : command.journal_path.empty() ? std::vector<std::string>{"journal"}
                                      : std::vector<std::string>{command.journal_path};
  for (const std::string& source : sources) {
    // Standard input is named by --name in the summary.
    const std::string file = source != "-"                    ? source
                             : command.stream_name == "stdin" ? std::string("stdin")
                                                              : "stdin (" + command.stream_name + ")";
    const auto started = std::chrono::steady_clock::now();
    ingest::IngestOptions options;
    options.year = command.year;
    options.follow = command.follow;
    options.stream_name = command.stream_name;
    options.max_line_bytes = line_limit;
    if (show_progress) {
      options.progress = [&file, started](std::int64_t bytes, std::uint64_t lines) {
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        std::fprintf(stderr, "\r%s: %.1f MiB, %llu lines, %s lines/s   ", file.c_str(),
                     static_cast<double>(bytes) / (1 << 20),
                     static_cast<unsigned long long>(lines), rate(lines, seconds).c_str());
      };
    }
    if (!command.follow && analysis_interval_ms > 0) {
      options.write_lock = &write_lock;
      options.committed = [&beside] {
        if (beside) beside->nudge();
      };
    }
    auto ingester =
        ingest::Ingester::open(command.database, command.busy_timeout_ms, std::move(options));
    if (!ingester) {
      std::fprintf(stderr, "smtpscope: %s\n", ingester.message().c_str());
      return 1;
    }
    read_any = true;
    if (fleet.value() && !forwarder) {
      auto started_forwarder =
          command.follow ? pg::ForwardWorker::start(
                               command.database, command.busy_timeout_ms, *fleet.value(),
                               std::chrono::milliseconds(config.value().database.forward_interval_ms))
                         : pg::ForwardWorker::open(command.database, command.busy_timeout_ms,
                                                   *fleet.value());
      if (!started_forwarder) {
        std::fprintf(stderr, "smtpscope: %s\n", started_forwarder.message().c_str());
        return 1;
      }
      forwarder = std::move(started_forwarder).value();
    }
    if (command.follow && analysis_interval_ms > 0 && !worker) {
      auto started_worker = analysis::AnalysisWorker::start(
          command.database, command.busy_timeout_ms, rules.value(),
          std::chrono::milliseconds(analysis_interval_ms));
      if (!started_worker) {
        std::fprintf(stderr, "smtpscope: %s\n", started_worker.message().c_str());
        return 1;
      }
      worker = std::move(started_worker).value();
    }
    if (!command.follow && analysis_interval_ms > 0 && !beside) {
      beside = analysis_beside(command, rules.value(), write_lock);
    }
    auto counts = command.journal ? ingester.value()->ingest_journal(journal, stop_requested)
                                  : ingester.value()->ingest(source, stop_requested);
    if (show_progress) std::fprintf(stderr, "\r\033[K");
    if (!counts) {
      std::fprintf(stderr, "smtpscope: %s\n", counts.message().c_str());
      failures += 1;
      continue;
    }
    const auto& c = counts.value();
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (c.no_complete_line) {
      std::printf("%s: no complete line yet, nothing to read\n", file.c_str());
    } else if (command.journal && c.lines == 0 && !c.already_complete) {
      std::printf("%s: no Postfix entries (SYSLOG_IDENTIFIER postfix/..., or --unit)%s\n",
                  file.c_str(), stop_requested ? " (interrupted)" : "");
    } else if (c.already_complete) {
      std::printf("%s: already ingested, nothing new\n", file.c_str());
    } else {
      std::printf("%s: %llu lines (%llu parsed, %llu skipped, %llu malformed)%s in %.2f s, "
                  "%s lines/s%s\n",
                  file.c_str(), static_cast<unsigned long long>(c.lines),
                  static_cast<unsigned long long>(c.parsed),
                  static_cast<unsigned long long>(c.skipped),
                  static_cast<unsigned long long>(c.malformed),
                  c.resumed_from > 0 ? fmt::format(", resumed at byte {}", c.resumed_from).c_str()
                                     : "",
                  seconds, rate(c.lines, seconds).c_str(),
                  stop_requested ? " (interrupted; run again to resume)" : "");
    }
    print_malformed_details(file, c, line_limit);
    if (unreadable_times(file, c)) failures += 1;
    if (c.incomplete_last_line) {
      std::printf("%s: the last line has no end yet; it is left for the next run\n",
                  file.c_str());
    }
    std::fflush(stdout);
    if (c.cut_short) {
      std::fprintf(stderr,
                   "smtpscope: %s: the gzip data is cut short (unexpected end of file, as "
                   "`gzip -t` says); its complete lines were kept, the rest is lost\n",
                   file.c_str());
      failures += 1;
    }
    if (stop_requested) break;
  }
  if (beside) beside->stop();
  if (worker) {
    worker->stop();
  } else if (analysis_interval_ms > 0 && read_any) {
    analyse_ended_sessions(command, rules.value(), show_progress);
  }
  if (forwarder) {
    forwarder->stop();
    if (!forward_the_rest(*forwarder, *fleet.value())) failures += 1;
  }
  return failures > 0 ? 1 : 0;
}

}  // namespace smtpscope::cli
