// smtpscope: the command-line view of what smtpscope recorded.
// Exit codes: 0 success, 1 runtime failure (database), 2 usage error.
#include <algorithm>
#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <iostream>

#include "client_population.h"
#include "client_report.h"
#include "command_line.h"
#include "database_access.h"
#include "discover_command.h"
#include "config.h"
#include "duration.h"
#include "ingest_command.h"
#include "local_client.h"
#include "logging.h"
#include "metrics_command.h"
#include "probe.h"
#include "prune.h"
#include "db_copy.h"
#include "db_forward.h"
#include "pg_url.h"
#include "servers.h"
#include "watch.h"
#include "overview_html.h"
#include "report_html.h"
#include "session_facts.h"
#include "terminal_style.h"
#include "session_reader.h"
#include "syslog_line.h"
#include "timeline_json.h"
#include "timeline_text.h"

namespace {

using namespace smtpscope;

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;

struct SessionsOptions {
  std::string client;
  std::string host;
  std::string since;
  std::size_t limit = 50;
  std::string format = "text";
};

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct AnalysisOptions {
  std::string client;
  std::string host;
  std::string since;
  std::string format = "text";
  std::string patterns_file;
  std::size_t limit = 1000;  // report: the client's most recent sessions shown
  std::size_t top = 100;  // report: clients on the overview page
  std::string out_dir;    // report: write index.html and the clients' pages here
  bool include_local = false;  // rank local reinjection (local_client.h) too
};

// The sessions a command asks for: a client, a --since window, a limit.
Result<SessionFilter> session_filter(const std::string& client, const std::string& since,
                                     std::size_t limit) {
  SessionFilter filter;
  if (!client.empty()) filter.client_addr = client;
  filter.limit = limit;
  if (!since.empty()) {
    auto window = parse_duration_us(since);
    if (!window) return window.status().context("--since");
    filter.since_us = now_us() - window.value();
  }
  return filter;
}

// Everything a clients table, correlate or report is made of: every
// client of the window from the stored analysis, scored against them all.
struct Analysis {
  analysis::AnalysisRules rules;
  std::unique_ptr<sql::Connection> db;
  std::vector<SessionRecord> sessions;  // read only when analysed in memory
  cli::Population population;
  cli::PopulationFilter filter;
};

Result<cli::PopulationFilter> population_filter(const AnalysisOptions& options) {
  cli::PopulationFilter filter;
  filter.include_local = options.include_local;
  filter.asked_client = options.client;
  filter.only_asked = !options.client.empty();
  if (!options.host.empty()) filter.host = options.host;
  if (!options.since.empty()) {
    auto window = parse_duration_us(options.since);
    if (!window) return window.status().context("--since");
    filter.since_us = now_us() - window.value();
  }
  return filter;
}

// Says how many local clients were left out, on `out` (a text output's
// footer) or stderr.
void note_local_left_out(const Analysis& analysed, std::ostream& out) {
  const std::size_t n = analysed.population.local_left_out;
  if (n == 0) return;
  out << (&out == &std::cerr ? "smtpscope: note: " : "") << n << " local client"
      << (n == 1 ? "" : "s")
      << " (content-filter reinjection from 127.0.0.1 or ::1) left out; --include-local shows "
      << (n == 1 ? "it" : "them") << '\n';
}

// Every session of the window read and analysed in memory.
Result<cli::Population> in_memory(sql::Connection& db, Analysis& analysed) {
  SessionFilter filter;
  filter.since_us = analysed.filter.since_us;
  filter.host = analysed.filter.host;
  filter.limit = std::numeric_limits<std::size_t>::max();
  auto read = read_sessions(db, filter);
  if (!read) return read.status();
  analysed.sessions = std::move(read).value();
  return cli::population_in_memory(cli::analyse(analysed.sessions, analysed.rules.patterns),
                                   analysed.filter);
}

// Loads the patterns, brings the stored analysis up to date (in an SQLite
// file; a PostgreSQL store holds what each host analysed) and reads the
// population; on failure prints the error and sets the exit code.
std::unique_ptr<Analysis> analyse_clients(const cli::StoreLocation& database,
                                          const AnalysisOptions& options, int& exit_code) {
  auto rules = analysis::load_rules(options.patterns_file);
  auto filter = population_filter(options);
  if (!rules || !filter) {
    std::cerr << "smtpscope: " << (rules ? filter.message() : rules.message()) << '\n';
    exit_code = exit_usage;
    return nullptr;
  }
  auto result = std::make_unique<Analysis>();
  result->rules = std::move(rules).value();
  result->filter = std::move(filter).value();
  auto db = cli::open_store(database, cli::Access::read_and_record);
  Result<bool> stored = db.status();
  if (db) {
    sqlite::Database* file = db.value()->sqlite();
    stored = file ? cli::refresh_analysis(*file, result->rules, std::cerr) : Result<bool>(true);
  }
  Result<cli::Population> population = stored.status();
  if (stored && stored.value()) {
    population = cli::read_population(*db.value(), result->rules.patterns, result->filter);
  } else if (stored) {
    population = in_memory(*db.value(), *result);
  }
  if (!population) {
    std::cerr << "smtpscope: " << population.message() << '\n';
    exit_code = exit_failure;
    return nullptr;
  }
  result->db = std::move(db).value();
  result->population = std::move(population).value();
  return result;
}

// The client's own most recent sessions (analysed again in memory for the
// report's timelines; the score stays the population's).
Status attach_sessions(Analysis& analysed, cli::ClientSummary& client, std::size_t limit,
                       std::vector<SessionRecord>& storage) {
  SessionFilter filter;
  filter.client_addr = client.client_addr;
  filter.since_us = analysed.filter.since_us;
  filter.host = analysed.filter.host;
  filter.limit = limit;
  auto read = read_sessions(*analysed.db, filter);
  if (!read) return read.status();
  storage = std::move(read).value();
  client.sessions = cli::analyse(storage, analysed.rules.patterns);
  return Status::ok();
}

// The options clients, report and correlate share.
CLI::App* add_analysis_command(CLI::App& app, const std::string& name, const std::string& about,
                               AnalysisOptions& options, std::vector<std::string> formats) {
  auto* command = app.add_subcommand(name, about);
  command->add_option("--since", options.since, "only sessions newer than this (24h, 7d)");
  command->add_option("--host", options.host,
                      "only sessions on this mail server (its log's host field)");
  command->add_option("--format", options.format, fmt::format("{}", fmt::join(formats, ", ")))
      ->check(CLI::IsMember(formats));
  command->add_option("--patterns", options.patterns_file,
                      "patterns file (default: the built-in conf/patterns.yaml)");
  command->add_flag("--include-local", options.include_local,
                    "rank local reinjection too (a content filter handing mail back from "
                    "127.0.0.1 or ::1, seen by XFORWARD or a syslog tag naming a port); left "
                    "out by default");
  return command;
}

int run_clients(const cli::StoreLocation& database, const AnalysisOptions& options) {
  int exit_code = 0;
  auto analysed = analyse_clients(database, options, exit_code);
  if (!analysed) return exit_code;
  const auto& clients = analysed->population.clients;
  std::cout << (options.format == "json" ? cli::render_clients_json(clients)
                                         : cli::render_clients_text(clients));
  note_local_left_out(*analysed, options.format == "json" ? std::cerr : std::cout);
  return 0;
}

// Writes text to dir/name; false (and a message) when it cannot.
bool write_page(const std::filesystem::path& dir, const std::string& name, const std::string& text) {
  std::ofstream file(dir / name, std::ios::binary | std::ios::trunc);
  file << text;
  file.close();
  if (!file) {
    std::cerr << "smtpscope: cannot write " << (dir / name).string() << '\n';
    return false;
  }
  return true;
}

// The overview page: on stdout, or with --out as DIR/index.html beside a
// report page for each client it lists.
int run_overview(Analysis& analysed, const AnalysisOptions& options) {
  cli::OverviewOptions overview;
  overview.top_clients = options.top;
  overview.link_clients = !options.out_dir.empty();
  auto& clients = analysed.population.clients;
  auto over_time = cli::read_pattern_minutes(*analysed.db, analysed.filter);
  if (!over_time) {
    std::cerr << "smtpscope: " << over_time.message() << '\n';
    return exit_failure;
  }
  const std::string page = cli::render_overview_html(
      clients, analysis::correlate(analysed.population.observations), over_time.value(), overview);
  if (options.out_dir.empty()) {
    std::cout << page;
    return 0;
  }
  const std::filesystem::path dir(options.out_dir);
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  if (error) {
    std::cerr << "smtpscope: cannot create " << options.out_dir << ": " << error.message() << '\n';
    return exit_failure;
  }
  const std::size_t shown = std::min(options.top, clients.size());
  for (std::size_t i = 0; i < shown; ++i) {
    auto& client = clients[i];
    std::vector<SessionRecord> sessions;
    if (Status read = attach_sessions(analysed, client, options.limit, sessions); !read) {
      std::cerr << "smtpscope: " << read.message() << '\n';
      return exit_failure;
    }
    const bool written = write_page(dir, cli::client_page_name(client.client_addr),
                                    cli::render_report_html(client));
    client.sessions.clear();
    if (!written) return exit_failure;
  }
  if (!write_page(dir, "index.html", page)) return exit_failure;
  std::cerr << "smtpscope: wrote " << (dir / "index.html").string() << " and " << shown
            << " client page" << (shown == 1 ? "" : "s") << '\n';
  return 0;
}

int run_report(const cli::StoreLocation& database, const AnalysisOptions& options) {
  if (options.client.empty() && options.format != "html") {
    std::cerr << "smtpscope: report: --client is required unless --format html (the overview)\n";
    return exit_usage;
  }
  if (!options.out_dir.empty() && (options.format != "html" || !options.client.empty())) {
    std::cerr << "smtpscope: report: --out writes the overview: --format html without --client\n";
    return exit_usage;
  }
  int exit_code = 0;
  auto analysed = analyse_clients(database, options, exit_code);
  if (!analysed) return exit_code;
  if (options.client.empty()) {
    note_local_left_out(*analysed, std::cerr);
    return run_overview(*analysed, options);
  }
  auto& clients = analysed->population.clients;
  auto found = std::find_if(clients.begin(), clients.end(),
                            [&](const cli::ClientSummary& c) { return c.client_addr == options.client; });
  if (found == clients.end()) {
    std::cerr << "smtpscope: no sessions of client " << options.client << '\n';
    return exit_failure;
  }
  auto& client = *found;
  std::vector<SessionRecord> sessions;
  if (Status read = attach_sessions(*analysed, client, options.limit, sessions); !read) {
    std::cerr << "smtpscope: " << read.message() << '\n';
    return exit_failure;
  }
  if (options.format == "text") {
    const std::string text = cli::render_report_text(client);
    std::cout << (cli::colour_wanted() ? cli::colourize(text) : text);
    return 0;
  }
  std::cout << (options.format == "json" ? cli::render_report_json(client)
                                         : cli::render_report_html(client));
  return 0;
}

int run_correlate(const cli::StoreLocation& database, const AnalysisOptions& options) {
  int exit_code = 0;
  auto analysed = analyse_clients(database, options, exit_code);
  if (!analysed) return exit_code;
  const auto associations = analysis::correlate(analysed->population.observations);
  std::cout << (options.format == "json"
                    ? cli::render_correlation_json(associations)
                    : cli::render_correlation_text(associations, analysed->population.clients));
  note_local_left_out(*analysed, options.format == "json" ? std::cerr : std::cout);
  return 0;
}

struct AnalyseOptions {
  std::string since;
  std::string patterns_file;
};

int run_analyse(const std::string& database, const AnalyseOptions& options) {
  auto rules = analysis::load_rules(options.patterns_file);
  std::optional<std::int64_t> since_us;
  if (!options.since.empty()) {
    auto window = parse_duration_us(options.since);
    if (!window) {
      std::cerr << "smtpscope: --since: " << window.message() << '\n';
      return exit_usage;
    }
    since_us = now_us() - window.value();
  }
  if (!rules) {
    std::cerr << "smtpscope: " << rules.message() << '\n';
    return exit_usage;
  }
  auto db = cli::open_database_at(database, cli::Access::read_and_record);
  if (!db) {
    std::cerr << "smtpscope: " << db.message() << '\n';
    return exit_failure;
  }
  if (db.value()->read_only()) {
    std::cerr << "smtpscope: analyse: " << database << " is read-only for this user\n";
    return exit_failure;
  }
  if (Status tuned = analysis::tune_for_analysis(*db.value()); !tuned) {
    std::cerr << "smtpscope: " << tuned.message() << '\n';
    return exit_failure;
  }
  const auto started = std::chrono::steady_clock::now();
  auto done = analysis::analyse_stored(*db.value(), rules.value(), since_us,
                                       cli::progress_bar("analysing"));
  if (!done) {
    std::cerr << "smtpscope: " << done.message() << " (run again to resume)\n";
    return exit_failure;
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::cout << fmt::format("analysed {} sessions in {:.1f} s ({:.0f} sessions/s)\n", done.value(),
                           seconds, seconds > 0 ? static_cast<double>(done.value()) / seconds : 0.0);
  return 0;
}

// Streams: one session in memory at a time, however many are asked for.
int run_sessions(const cli::StoreLocation& database, const SessionsOptions& options) {
  auto filter = session_filter(options.client, options.since, options.limit);
  if (filter && !options.host.empty()) filter.value().host = options.host;
  if (!filter) {
    std::cerr << "smtpscope: " << filter.message() << '\n';
    return exit_usage;
  }
  auto db = cli::open_store(database, cli::Access::read);
  if (!db) {
    std::cerr << "smtpscope: " << db.message() << '\n';
    return exit_failure;
  }
  Status read = Status::ok();
  if (options.format == "json") {
    cli::TimelineJsonWriter writer(std::cout);
    read = for_each_session(*db.value(), filter.value(), [&writer](SessionRecord session) {
      writer.add(session);
      return Status::ok();
    });
    if (read) writer.finish();  // a failed read leaves the document unclosed
  } else {
    cli::TimelineTextWriter writer(std::cout, cli::colour_wanted());
    read = for_each_session(*db.value(), filter.value(), [&writer](SessionRecord session) {
      writer.add(session, analysis::facts_of(session).notes);
      return Status::ok();
    });
    if (read) writer.finish();
  }
  if (!read) {
    std::cerr << "smtpscope: reading sessions: " << read.message() << '\n';
    return exit_failure;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Diagnostics (a schema upgrade, a store warning) go to stderr: stdout is
  // the command's output, JSON for scripts.
  if (Status logging = setup_logging("smtpscope", "info", "stderr"); !logging) {
    std::cerr << "smtpscope: " << logging.message() << '\n';
    return exit_failure;
  }
  CLI::App app{
      "smtpscope: joins what smtpscope-milter, smtpscope-policyd and Postfix's log recorded "
      "about each SMTP session into one timeline per connection, fingerprints each client and "
      "explains the patterns it shows.",
      "smtpscope"};
  app.set_version_flag("-V,--version", std::string("smtpscope ") + SMTPSCOPE_VERSION);
  cli::DatabaseChoice database{"/etc/smtpscope/smtpscope.yaml", "", ""};
  // A file named with -c must exist; without -c a missing default file means
  // the built-in defaults.
  app.add_option("-c,--config", database.config_path, "configuration file naming the database")
      ->capture_default_str()
      ->check(CLI::ExistingFile);
  app.add_option("--db", database.db_path,
                 "SQLite database file, or a PostgreSQL fleet store as "
                 "postgresql://user@host[:port]/database (overrides the configuration's "
                 "database.url and database.path); the views, servers, watch, metrics and db "
                 "prune read either, ingest, analyse, discover and db copy the file");
  app.add_option("--password-file", database.password_file,
                 "file holding the PostgreSQL password for --db postgresql://... (mode 0600 or "
                 "0640; else database.password_file, SMTPSCOPE_DB_PASSWORD or PGPASSWORD; never "
                 "in the URL)");
  app.require_subcommand(1);
  app.footer(
      "Exit status: 0 success, 1 runtime failure (database missing, locked or unreadable), "
      "2 usage or configuration error.\nDiagnostics go to stderr, never into the output.\n"
      "The database is plain SQLite, or PostgreSQL for a fleet of mail servers: see "
      "schema/README.md for its tables.");

  SessionsOptions sessions;
  auto* sessions_cmd = app.add_subcommand(
      "sessions", "print sessions as timelines: one line per recorded stage, relative times");
  sessions_cmd->add_option("--client", sessions.client, "only this client IP address")
      ->check(cli::client_address_validator());
  sessions_cmd->add_option("--since", sessions.since, "only sessions newer than this (24h, 30m)");
  sessions_cmd->add_option("--host", sessions.host,
                           "only sessions on this mail server (its log's host field)");
  sessions_cmd->add_option("--limit", sessions.limit, "the most recent N sessions")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  sessions_cmd->add_option("--format", sessions.format, "text or json")
      ->capture_default_str()
      ->check(CLI::IsMember({"text", "json"}));

  AnalysisOptions clients_options;
  auto* clients_cmd = add_analysis_command(
      app, "clients",
      "one line per client: anomaly score, sessions, transactions, abort rate, fingerprint, HELO "
      "quirks and the pattern that names most of its sessions; most anomalous first",
      clients_options, {"text", "json"});

  AnalysisOptions report_options;
  auto* report_cmd = add_analysis_command(
      app, "report",
      "explain one client: its anomaly score and reasons, patterns with the most likely "
      "explanation and advice, HELO quirks, fingerprints, and every session with its stage "
      "string and timeline; with --format html and no --client, the overview page of all "
      "clients (ranking, patterns over time, correlations, advice)",
      report_options, {"text", "json", "html"});
  report_cmd->add_option("--client", report_options.client,
                         "client IP address (required but for the HTML overview)")
      ->check(cli::client_address_validator());
  report_cmd->add_option("--limit", report_options.limit,
                         "the client's most recent N sessions shown (its score counts all)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  report_cmd->add_option("--top", report_options.top, "overview: the N most anomalous clients")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  report_cmd->add_option("--out", report_options.out_dir,
                         "overview: write DIR/index.html and a report page per client listed");

  AnalysisOptions correlate_options;
  auto* correlate_cmd = add_analysis_command(
      app, "correlate",
      "for each fingerprint and HELO quirk, how often each pattern occurs against the rest of "
      "the population: lift and a 95% Wilson interval",
      correlate_options, {"text", "json"});

  AnalyseOptions analyse_options;
  auto* analyse_cmd = app.add_subcommand(
      "analyse", "analyse the stored sessions again (after a new patterns file or smtpscope "
                 "version; the commands say when the stored analysis is stale): each session's "
                 "stage string, facts, HELO quirks, fingerprint and patterns, into "
                 "session_analysis and the per-client counts every view reads; resumable, with "
                 "a progress bar on a terminal");
  analyse_cmd->add_option("--since", analyse_options.since,
                          "only sessions newer than this (24h, 7d)");
  analyse_cmd->add_option("--patterns", analyse_options.patterns_file,
                          "patterns file (default: the built-in conf/patterns.yaml)");

  cli::DiscoverOptions discover;
  auto* discover_cmd = app.add_subcommand(
      "discover", "what no pattern names yet: the unnamed sessions grouped by shape (stages with "
                  "pauses bucketed, the log's command counters, HELO class, timing), largest "
                  "first, each with an example timeline and a ready patterns.yaml entry");
  discover_cmd->add_option("--since", discover.since, "only sessions newer than this (24h, 7d)");
  discover_cmd->add_option("--limit", discover.limit, "the most recent N sessions at most")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  discover_cmd->add_option("--top", discover.top, "the N largest groups")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000));
  discover_cmd->add_option("--min-sessions", discover.min_sessions,
                           "groups of fewer sessions are not shown")
      ->capture_default_str()
      ->check(CLI::Range(1, 100000000));
  discover_cmd->add_option("--format", discover.format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  discover_cmd->add_option("--patterns", discover.patterns_file,
                           "patterns file (default: the built-in conf/patterns.yaml)");

  cli::WatchOptions watch;
  auto* watch_cmd = app.add_subcommand(
      "watch", "show sessions live as they end, one line each: time, client, HELO, stage "
               "string, pattern, and a marker when a client's fingerprint changes");
  watch_cmd->add_option("--log", watch.log_file, "also follow this log (like ingest --follow)")
      ->check(CLI::ExistingFile);
  watch_cmd->add_option("--client", watch.client, "only this client address")
      ->check(cli::client_address_validator());
  watch_cmd->add_option("--pattern", watch.pattern, "only sessions named by this pattern");
  watch_cmd->add_option("--quirk", watch.quirk, "only sessions with this HELO quirk");
  watch_cmd->add_flag("--json", watch.json, "one JSON object per line");
  watch_cmd->add_option("--patterns", watch.patterns_file, "patterns file");

  std::string servers_format = "text";
  auto* servers_cmd = app.add_subcommand(
      "servers", "remote servers as Postfix's smtp client saw them (from the log): deliveries, "
                 "failures, verification probes, and where connections were lost; names servers "
                 "that break pipelined probes, with the workarounds");
  servers_cmd->add_option("--format", servers_format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));

  cli::ProbeOptions probe;
  auto* probe_cmd = app.add_subcommand(
      "probe", "check a server's PIPELINING: EHLO, then MAIL FROM:<>, RCPT, RSET, QUIT in one "
               "TCP segment, expecting four replies in order (as address verification needs); "
               "sends no message unless --data-sink is given. Exit 0 conformant, 1 not");
  probe_cmd->add_option("target", probe.target, "HOST[:PORT] (port 25 by default)")->required();
  probe_cmd->add_option("--source", probe.source, "local IPv4 address to connect from");
  probe_cmd->add_option("--helo", probe.helo, "EHLO name")->capture_default_str();
  probe_cmd->add_option("--recipient", probe.recipient,
                        "RCPT of the envelope group (default postmaster@HOST)");
  probe_cmd->add_option("--data-sink", probe.data_sink,
                        "also test the DATA group and dot+QUIT by sending a tiny message here");
  probe_cmd->add_option("--timeout", probe.timeout_s, "seconds to wait for each reply")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 600.0));
  probe_cmd->add_option("--format", probe.format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));

  cli::IngestCommand ingest;
  auto* ingest_cmd = app.add_subcommand(
      "ingest", std::string("read Postfix log files (plain or gzip) or standard input into the "
                "database, joined to the daemons' sessions; reading a file again adds nothing, "
                "an interrupted read resumes. Timestamps: ") + smtpscope::ingest::accepted_time_formats);
  ingest_cmd->add_option("files", ingest.files,
                         "log files, e.g. /var/log/mail.log*, or - for standard input (read "
                         "until it is closed: docker logs -f mx | smtpscope ingest -)")
      ->check([](const std::string& file) {
        return file == "-" ? std::string() : CLI::ExistingFile(file);
      });
  ingest_cmd->add_flag("--journal", ingest.journal,
                       "read Postfix's entries of the systemd journal (SYSLOG_IDENTIFIER "
                       "postfix/*, postfix-in/smtpd, ...) from where the last run stopped");
  ingest_cmd->add_option("--journal-file", ingest.journal_path,
                         "with --journal: a journal file or directory (exported, archived) "
                         "instead of the system's")
      ->check([](const std::string& path) {
        return std::filesystem::exists(path) ? std::string() : path + ": no such file or directory";
      });
  ingest_cmd->add_option("--unit", ingest.journal_unit,
                         "with --journal: this systemd unit's entries (e.g. postfix@-.service)");
  ingest_cmd->add_option("--name", ingest.stream_name,
                         "the name standard input's position is recorded under (default stdin)");
  ingest_cmd->add_flag("-F,--follow", ingest.follow,
                       "keep reading as the file grows, across rotation (one file), or the journal as "
                       "it grows");
  ingest_cmd->add_option("--year", ingest.year,
                         "year of the first line's timestamp when lines carry none (default: from "
                         "the file's mtime); later lines move on a year only at Dec -> Jan")
      ->check(CLI::Range(1970, 9999));
  ingest_cmd->add_flag("-q,--quiet", ingest.quiet, "no progress display");

  cli::PruneOptions prune;
  auto* db_cmd = app.add_subcommand("db", "database maintenance");
  db_cmd->require_subcommand(1);
  auto* prune_cmd = db_cmd->add_subcommand(
      "prune", "delete sessions (with their transactions, events and analysis), outbound log "
               "records and drop counts older than a duration, in short transactions the running "
               "daemons wait for only briefly; --vacuum then returns the space to the file system");
  prune_cmd->add_option("--older-than", prune.older_than, "delete what began longer ago than this, e.g. 90d, 24h")
      ->required();
  prune_cmd->add_flag("--vacuum", prune.vacuum,
                      "rewrite the file afterwards (takes the database lock for its duration)");
  prune_cmd->add_option("--format", prune.format, "text or json")
      ->check(CLI::IsMember({"text", "json"}));
  cli::DbCopyOptions db_copy;
  auto* copy_cmd = db_cmd->add_subcommand(
      "copy", "copy every row of the SQLite database into an empty PostgreSQL database (its "
              "schema created first), in one transaction, so this host's history joins a fleet "
              "store; the password comes from --password-file, SMTPSCOPE_DB_PASSWORD or "
              "PGPASSWORD, never the URL");
  copy_cmd->add_option("--to", db_copy.to, "postgresql://user@host[:port]/database")->required();
  copy_cmd->add_option("--password-file", db_copy.password_file,
                       "file holding the PostgreSQL password (mode 0600 or 0640)");
  copy_cmd->add_flag("-q,--quiet", db_copy.quiet, "no progress display");

  cli::DbForwardOptions db_forward;
  auto* forward_cmd = db_cmd->add_subcommand(
      "forward", "send what this SQLite database holds and the fleet store (PostgreSQL) does "
                 "not yet, until caught up, as the daemons' forwarder does in the background: "
                 "a host's history, a spool after an outage, logs of other hosts ingested here. "
                 "Rows keep their own ids in this file and get their origin's in the fleet "
                 "store; run again, only what is new goes");
  forward_cmd->add_option("--to", db_forward.to,
                          "postgresql://user@host[:port]/database (default: database.url)");
  forward_cmd->add_option("--password-file", db_forward.password_file,
                          "file holding the PostgreSQL password (mode 0600 or 0640; default: "
                          "database.password_file, SMTPSCOPE_DB_PASSWORD, PGPASSWORD)");
  forward_cmd->add_option("--host", db_forward.host,
                          "MTA host name for sessions that name none (default: daemon.host, "
                          "else this machine's name)");
  forward_cmd->add_flag("-q,--quiet", db_forward.quiet, "no progress display");

  cli::MetricsOptions metrics;
  auto* metrics_cmd = app.add_subcommand(
      "metrics", "Prometheus text: sessions per pattern and per HELO quirk, and the anomaly "
                 "score of the top-N clients, for node_exporter's textfile collector (stdout, or "
                 "--out FILE written atomically) or served over HTTP (--listen). Client addresses "
                 "appear as label values only for those top-N clients");
  metrics_cmd->add_option("--since", metrics.since, "only sessions newer than this (24h, 7d)");
  metrics_cmd->add_option("--top", metrics.top,
                          "clients with a score series, most anomalous first (bounds the "
                          "client label: at most 1000)")
      ->capture_default_str()
      ->check(CLI::Range(0, static_cast<int>(cli::max_top_clients)));
  metrics_cmd->add_option("--patterns", metrics.patterns_file,
                          "patterns file (default: the built-in conf/patterns.yaml)");
  metrics_cmd->add_option("--out", metrics.out,
                          "write to this file (via a temporary file and rename), e.g. "
                          "/var/lib/prometheus/node-exporter/smtpscope.prom");
  metrics_cmd->add_option("--listen", metrics.listen,
                          "serve GET /metrics on HOST:PORT (PORT alone: 127.0.0.1) until "
                          "SIGTERM; each scrape reads the database");

  if (const auto parsed = cli::parse_command_line(app, argc, argv)) return *parsed;
  if (probe_cmd->parsed()) return cli::run_probe(probe);
  if (ingest_cmd->parsed() && ingest.journal != ingest.files.empty()) {
    std::cerr << "smtpscope: ingest takes log files (or -) or --journal\n";
    return exit_usage;
  }
  if (ingest_cmd->parsed() && !ingest.journal &&
      (!ingest.journal_path.empty() || !ingest.journal_unit.empty())) {
    std::cerr << "smtpscope: --journal-file and --unit go with --journal\n";
    return exit_usage;
  }
  if (ingest_cmd->parsed() && ingest.follow && !ingest.journal && ingest.files.size() != 1) {
    std::cerr << "smtpscope: --follow takes exactly one file\n";
    return exit_usage;
  }
  // Every other command reads the database; a configuration that does not
  // name one is a configuration error. The views read the store (an SQLite
  // file or PostgreSQL); the rest work on this host's file.
  auto store = cli::store_location(database);
  auto path = cli::database_path(database);
  if (!store || !path) {
    std::cerr << "smtpscope: " << (store ? path.message() : store.message()) << '\n';
    return exit_usage;
  }
  const cli::StoreLocation& location = store.value();
  if (sessions_cmd->parsed()) return run_sessions(location, sessions);
  if (clients_cmd->parsed()) return run_clients(location, clients_options);
  if (report_cmd->parsed()) return run_report(location, report_options);
  if (correlate_cmd->parsed()) return run_correlate(location, correlate_options);
  if (servers_cmd->parsed()) return cli::run_servers(location, servers_format);
  if (watch_cmd->parsed()) {
    watch.database = location.target;
    watch.password_file = location.password_file;
    return cli::run_watch(watch);
  }
  if (metrics_cmd->parsed()) {
    metrics.database = location;
    return cli::run_metrics(metrics);
  }
  if (prune_cmd->parsed()) {
    // This host's file unless --db names the fleet store: each host's
    // retention timer prunes its own file, never the fleet's.
    prune.database = cli::StoreLocation{path.value(), location.password_file};
    return cli::run_prune(prune);
  }
  if (ingest_cmd->parsed() && pg::is_pg_url(path.value())) {
    // Read into this host's file and forwarded to the URL.
    auto local = cli::database_path(cli::DatabaseChoice{database.config_path, "", ""});
    if (!local) {
      std::cerr << "smtpscope: " << local.message() << '\n';
      return exit_usage;
    }
    ingest.forward_to = path.value();
    ingest.password_file = location.password_file;
    path = std::move(local);
  }
  const std::string& db = path.value();
  const std::string command = analyse_cmd->parsed()    ? "analyse"
                              : discover_cmd->parsed() ? "discover"
                              : copy_cmd->parsed()     ? "db copy"
                              : forward_cmd->parsed()  ? "db forward"
                                                       : "ingest";
  if (Status local = cli::needs_local_file(command, db); !local) {
    std::cerr << "smtpscope: " << local.message() << '\n';
    return exit_usage;
  }
  if (analyse_cmd->parsed()) return run_analyse(db, analyse_options);
  if (discover_cmd->parsed()) {
    discover.database = db;
    return cli::run_discover(discover);
  }
  if (copy_cmd->parsed()) {
    db_copy.database = db;
    // Its own --password-file, else the global one or the configuration's.
    if (db_copy.password_file.empty()) db_copy.password_file = location.password_file;
    return cli::run_db_copy(db_copy);
  }
  if (forward_cmd->parsed()) {
    db_forward.database = db;
    db_forward.config_path = database.config_path;
    return cli::run_db_forward(db_forward);
  }
  if (ingest_cmd->parsed()) {
    ingest.database = db;
    ingest.config_path = database.config_path;
    return cli::run_ingest(ingest);
  }
  return exit_usage;
}
