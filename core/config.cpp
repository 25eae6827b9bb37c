#include "config.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "metrics_http.h"
#include "yaml_load.h"

namespace smtpscope {
namespace {

template <typename Field>
using Accessor = Field& (*)(Config&);

Result<long long> parse_integer(const YAML::Node& node, long long min, long long max) {
  if (!node.IsScalar()) return Status::error("expected an integer");
  const std::string& text = node.Scalar();
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) {
    return Status::error(fmt::format("expected an integer, got \"{}\"", text));
  }
  if (value < min || value > max) {
    return Status::error(fmt::format("{} is out of range [{}, {}]", value, min, max));
  }
  return value;
}

template <typename Int>
ConfigKey integer_key(std::string_view path, Accessor<Int> field, long long min, long long max,
                      std::string_view default_value, std::string_view doc) {
  return {path, "integer", default_value, doc,
          [field, min, max](Config& config, const YAML::Node& node) -> Status {
            auto value = parse_integer(node, min, max);
            if (!value) return value.status();
            field(config) = static_cast<Int>(value.value());
            return Status::ok();
          }};
}

ConfigKey string_key(std::string_view path, Accessor<std::string> field,
                     std::string_view default_value, std::string_view doc, bool may_be_empty) {
  return {path, "string", default_value, doc,
          [field, may_be_empty](Config& config, const YAML::Node& node) -> Status {
            if (node.IsNull() && may_be_empty) {
              field(config).clear();
              return Status::ok();
            }
            if (!node.IsScalar()) return Status::error("expected a string");
            if (node.Scalar().empty() && !may_be_empty) return Status::error("must not be empty");
            field(config) = node.Scalar();
            return Status::ok();
          }};
}

// A metrics endpoint: empty (off), or a listen spec metrics_http.h accepts.
ConfigKey listen_key(std::string_view path, Accessor<std::string> field, std::string_view doc) {
  return {path, "string", "\"\"", doc, [field](Config& config, const YAML::Node& node) -> Status {
            if (node.IsNull()) {
              field(config).clear();
              return Status::ok();
            }
            if (!node.IsScalar()) return Status::error("expected a string");
            if (!node.Scalar().empty()) {
              if (auto spec = parse_metrics_listen(node.Scalar()); !spec) return spec.status();
            }
            field(config) = node.Scalar();
            return Status::ok();
          }};
}

ConfigKey choice_key(std::string_view path, Accessor<std::string> field,
                     std::vector<std::string> choices, std::string_view default_value,
                     std::string_view doc) {
  return {path, "choice", default_value, doc,
          [field, choices](Config& config, const YAML::Node& node) -> Status {
            if (node.IsScalar()) {
              for (const auto& choice : choices) {
                if (node.Scalar() == choice) {
                  field(config) = choice;
                  return Status::ok();
                }
              }
            }
            return Status::error(fmt::format("expected one of: {}", fmt::join(choices, ", ")));
          }};
}

ConfigKey boolean_key(std::string_view path, Accessor<bool> field, std::string_view default_value,
                      std::string_view doc) {
  return {path, "boolean", default_value, doc,
          [field](Config& config, const YAML::Node& node) -> Status {
            if (node.IsScalar()) {
              const std::string& text = node.Scalar();
              if (text == "true" || text == "yes") return field(config) = true, Status::ok();
              if (text == "false" || text == "no") return field(config) = false, Status::ok();
            }
            return Status::error("expected true or false");
          }};
}

ConfigKey list_key(std::string_view path, Accessor<std::vector<std::string>> field,
                   std::size_t max_items, std::string_view default_value, std::string_view doc) {
  return {path, "list of strings", default_value, doc,
          [field, max_items](Config& config, const YAML::Node& node) -> Status {
            if (!node.IsSequence()) return Status::error("expected a list, e.g. [a, b]");
            if (node.size() > max_items) {
              return Status::error(fmt::format("at most {} items", max_items));
            }
            std::vector<std::string> items;
            for (const auto& item : node) {
              if (!item.IsScalar() || item.Scalar().empty()) {
                return Status::error("every item must be a non-empty string");
              }
              items.push_back(item.Scalar());
            }
            field(config) = std::move(items);
            return Status::ok();
          }};
}

ConfigKey mode_key(std::string_view path, Accessor<mode_t> field, std::string_view default_value,
                   std::string_view doc) {
  return {path, "octal file mode", default_value, doc,
          [field](Config& config, const YAML::Node& node) -> Status {
            if (!node.IsScalar()) return Status::error("expected an octal mode such as \"0660\"");
            const std::string& text = node.Scalar();
            unsigned value = 0;
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 8);
            if (ec != std::errc() || end != text.data() + text.size() || value > 0777) {
              return Status::error(fmt::format("expected an octal mode such as \"0660\", got \"{}\"",
                                               text));
            }
            field(config) = static_cast<mode_t>(value);
            return Status::ok();
          }};
}

std::vector<ConfigKey> build_keys() {
  constexpr long long max_int = std::numeric_limits<int>::max();
  return {
      string_key("database.path", [](Config& c) -> auto& { return c.database.path; },
                 "/var/lib/smtpscope/smtpscope.db", "SQLite database file shared by all smtpscope parts",
                 false),
      integer_key<int>("database.busy_timeout_ms",
                       [](Config& c) -> auto& { return c.database.busy_timeout_ms; }, 0, 600000,
                       "5000", "how long a write waits for another writer's lock"),
      string_key("database.url", [](Config& c) -> auto& { return c.database.url; }, "\"\"",
                 "fleet store, postgresql://user@host/db: sessions recorded in database.path "
                 "are forwarded there (empty: SQLite only; no password here)",
                 true),
      string_key("database.password_file",
                 [](Config& c) -> auto& { return c.database.password_file; }, "\"\"",
                 "file holding the fleet store's password, readable by its owner only (else "
                 "SMTPSCOPE_DB_PASSWORD or PGPASSWORD)",
                 true),
      integer_key<std::size_t>("database.spool_max_events",
                               [](Config& c) -> auto& { return c.database.spool_max_events; },
                               1000, 1000000000, "5000000",
                               "events recorded but not yet forwarded to the fleet store, at "
                               "most; beyond this new events are dropped and counted"),
      integer_key<int>("database.forward_interval_ms",
                       [](Config& c) -> auto& { return c.database.forward_interval_ms; }, 10,
                       600000, "1000",
                       "how often new rows are forwarded to the fleet store (and retried)"),
      integer_key<std::size_t>("store.queue_capacity",
                               [](Config& c) -> auto& { return c.store.queue_capacity; }, 16,
                               10000000, "65536",
                               "events buffered in memory; beyond this they are dropped and counted"),
      integer_key<std::size_t>("store.queue_bytes",
                               [](Config& c) -> auto& { return c.store.queue_bytes; }, 1024 * 1024,
                               std::size_t{16} * 1024 * 1024 * 1024, "268435456",
                               "bytes of events buffered in memory at most (an ordinary policy event "
                               "holds ~2.8 KB, a milter event ~0.1-0.6 KB); beyond this they are "
                               "dropped and counted"),
      integer_key<std::size_t>("store.batch_size",
                               [](Config& c) -> auto& { return c.store.batch_size; }, 1, 1000000,
                               "4096", "events committed per database transaction at most"),
      integer_key<int>("store.batch_interval_ms",
                       [](Config& c) -> auto& { return c.store.batch_interval_ms; }, 1, 60000, "200",
                       "longest time an event waits before it is committed"),
      integer_key<int>("store.retry_interval_ms",
                       [](Config& c) -> auto& { return c.store.retry_interval_ms; }, 10, 600000,
                       "1000", "pause before retrying a batch the database refused"),
      string_key("milter.socket", [](Config& c) -> auto& { return c.milter.socket; },
                 "unix:/run/smtpscope/milter.sock",
                 "libmilter socket: unix:/path or inet:port@host", false),
      mode_key("milter.socket_mode", [](Config& c) -> auto& { return c.milter.socket_mode; },
               "\"0660\"", "permissions of a unix socket (Postfix must be able to connect)"),
      integer_key<int>("milter.timeout_s", [](Config& c) -> auto& { return c.milter.timeout_s; }, 1,
                       max_int, "7210", "libmilter I/O timeout with the MTA"),
      list_key("milter.macros", [](Config& c) -> auto& { return c.milter.macros; }, 64,
               "[j, _, v, \"{daemon_name}\", \"{daemon_addr}\", \"{daemon_port}\", "
               "\"{client_addr}\", \"{client_port}\", \"{client_name}\", \"{client_ptr}\", "
               "\"{client_resolve}\", \"{client_connections}\", \"{tls_version}\", \"{cipher}\", "
               "\"{cipher_bits}\", \"{cert_subject}\", \"{cert_issuer}\", \"{auth_type}\", "
               "\"{auth_authen}\", \"{auth_author}\", \"{mail_addr}\", \"{mail_host}\", "
               "\"{mail_mailer}\", \"{rcpt_addr}\", \"{rcpt_host}\", \"{rcpt_mailer}\"]",
               "Postfix macros to record, each at the stages where Postfix sends it"),
      list_key("milter.headers", [](Config& c) -> auto& { return c.milter.headers; }, 64,
               "[X-Mailer, User-Agent]", "message headers to record (case-insensitive names)"),
      boolean_key("milter.record_body_size",
                  [](Config& c) -> auto& { return c.milter.record_body_size; }, "false",
                  "count body bytes (asks Postfix for the body; the policy server's "
                  "END-OF-MESSAGE gives the message size without it)"),
      integer_key<std::size_t>("milter.max_recipients",
                               [](Config& c) -> auto& { return c.milter.max_recipients; }, 1,
                               100000, "1000", "recipients recorded per transaction at most"),
      integer_key<std::size_t>("milter.max_headers",
                               [](Config& c) -> auto& { return c.milter.max_headers; }, 0, 10000,
                               "32", "headers recorded per message at most"),
      integer_key<std::size_t>("milter.max_value_bytes",
                               [](Config& c) -> auto& { return c.milter.max_value_bytes; }, 16,
                               65536, "1024", "longest client string stored; longer ones are cut"),
      string_key("milter.pid_file", [](Config& c) -> auto& { return c.milter.pid_file; }, "\"\"",
                 "where to write the daemon's PID (empty: none)", true),
      list_key("policy.listen", [](Config& c) -> auto& { return c.policy.listen; }, 16,
               "[\"unix:/run/smtpscope/policy.sock\"]",
               "where to serve: unix:/path, inet:HOST:PORT, or stdio (spawn(8), alone)"),
      mode_key("policy.socket_mode", [](Config& c) -> auto& { return c.policy.socket_mode; },
               "\"0660\"", "permissions of a unix socket (Postfix must be able to connect)"),
      string_key("policy.rules_file", [](Config& c) -> auto& { return c.policy.rules_file; },
                 "\"\"", "rules answering other than DUNNO (empty: observe only)", true),
      integer_key<std::size_t>("policy.max_line_bytes",
                               [](Config& c) -> auto& { return c.policy.max_line_bytes; }, 256,
                               16 * 1024 * 1024, "65536",
                               "longest request line; longer closes the connection"),
      integer_key<std::size_t>("policy.max_request_bytes",
                               [](Config& c) -> auto& { return c.policy.max_request_bytes; },
                               1024, 64 * 1024 * 1024, "1048576",
                               "largest request; larger closes the connection"),
      integer_key<std::size_t>("policy.max_attributes",
                               [](Config& c) -> auto& { return c.policy.max_attributes; }, 8,
                               100000, "1024", "most attributes in one request"),
      integer_key<std::size_t>("policy.max_value_bytes",
                               [](Config& c) -> auto& { return c.policy.max_value_bytes; }, 16,
                               65536, "1024", "longest attribute value stored; longer ones are cut"),
      integer_key<int>("policy.idle_timeout_s",
                       [](Config& c) -> auto& { return c.policy.idle_timeout_s; }, 1, 86400, "600",
                       "close a connection idle this long (Postfix closes its own after 300s)"),
      integer_key<int>("policy.request_timeout_s",
                       [](Config& c) -> auto& { return c.policy.request_timeout_s; }, 1, 3600,
                       "100", "close a connection stalled in the middle of a request, or one that "
                       "has not read its answers for this long"),
      integer_key<std::size_t>("policy.max_connections",
                               [](Config& c) -> auto& { return c.policy.max_connections; }, 1,
                               1000000, "4096", "open connections at most; more are refused"),
      integer_key<std::size_t>("policy.max_output_bytes",
                               [](Config& c) -> auto& { return c.policy.max_output_bytes; }, 1024,
                               64 * 1024 * 1024, "65536",
                               "answers not yet read by a client at most (also its socket's send "
                               "buffer); beyond this the server stops reading its requests until "
                               "it reads"),
      integer_key<int>("policy.history_cache_s",
                       [](Config& c) -> auto& { return c.policy.history_cache_s; }, 0, 86400, "30",
                       "how long rules reuse a client's history from the database"),
      string_key("policy.pid_file", [](Config& c) -> auto& { return c.policy.pid_file; }, "\"\"",
                 "where to write the daemon's PID (empty: none)", true),
      integer_key<std::size_t>("ingest.max_line_bytes",
                               [](Config& c) -> auto& { return c.ingest.max_line_bytes; }, 1024,
                               16 * 1024 * 1024, "65536",
                               "longest log line read; the rest of a longer line is skipped and "
                               "the line counted malformed"),
      string_key("analysis.patterns_file",
                 [](Config& c) -> auto& { return c.analysis.patterns_file; }, "\"\"",
                 "patterns the daemons, ingest and watch analyse each ended session with "
                 "(empty: the built-in ones); the commands take --patterns",
                 true),
      integer_key<int>("analysis.interval_ms",
                       [](Config& c) -> auto& { return c.analysis.interval_ms; }, 0, 3600000,
                       "2000",
                       "how often the daemons and ingest analyse the sessions that ended, off "
                       "Postfix's path (0: never; the commands then analyse when asked)"),
      listen_key("metrics.milter_listen",
                 [](Config& c) -> auto& { return c.metrics.milter_listen; },
                 "Prometheus endpoint of the milter, HOST:PORT or PORT (127.0.0.1 when no host; "
                 "empty: off)"),
      listen_key("metrics.policy_listen",
                 [](Config& c) -> auto& { return c.metrics.policy_listen; },
                 "Prometheus endpoint of the policy server, HOST:PORT or PORT (127.0.0.1 when "
                 "no host; empty: off)"),
      string_key("daemon.user", [](Config& c) -> auto& { return c.daemon.user; }, "\"\"",
                 "started as root, the daemons become this user after binding", true),
      string_key("daemon.group", [](Config& c) -> auto& { return c.daemon.group; }, "\"\"",
                 "and this group (empty: the user's primary group)", true),
      boolean_key("daemon.allow_root", [](Config& c) -> auto& { return c.daemon.allow_root; },
                  "false", "keep running as root when no user is set (not recommended)"),
      string_key("daemon.host", [](Config& c) -> auto& { return c.daemon.host; }, "\"\"",
                 "MTA host name the milter and policy server record sessions under (empty: "
                 "this machine's host name)",
                 true),
      choice_key("logging.level", [](Config& c) -> auto& { return c.logging.level; },
                 {"trace", "debug", "info", "warn", "error"}, "info",
                 "least severe message logged; debug logs one line per event"),
      choice_key("logging.target", [](Config& c) -> auto& { return c.logging.target; },
                 {"stderr", "syslog"}, "stderr", "where log lines go"),
  };
}

std::string line_prefix(const std::string& name, const YAML::Node& node) {
  const YAML::Mark mark = node.Mark();
  if (mark.line < 0) return name;
  return fmt::format("{}:{}", name, mark.line + 1);
}

// Walks the YAML map and applies each key through the table.
Status apply_yaml(Config& config, const YAML::Node& root, const std::string& name) {
  if (root.IsNull()) return Status::ok();  // an empty file means all defaults
  if (!root.IsMap()) return Status::error(fmt::format("{}: expected a mapping of sections", name));
  const auto& keys = config_keys();
  for (const auto& section : root) {
    const std::string section_name = section.first.as<std::string>();
    if (!section.second.IsMap()) {
      return Status::error(fmt::format("{}: {}: expected a mapping of keys",
                                       line_prefix(name, section.first), section_name));
    }
    for (const auto& entry : section.second) {
      const std::string path = section_name + "." + entry.first.as<std::string>();
      const auto key = std::find_if(keys.begin(), keys.end(),
                                    [&](const ConfigKey& k) { return k.path == path; });
      if (key == keys.end()) {
        return Status::error(
            fmt::format("{}: {}: unknown key", line_prefix(name, entry.first), path));
      }
      if (Status set = key->set(config, entry.second); !set) {
        return Status::error(fmt::format("{}: {}: {}", line_prefix(name, entry.second), path,
                                         set.message()));
      }
    }
  }
  return Status::ok();
}

}  // namespace

const std::vector<ConfigKey>& config_keys() {
  static const std::vector<ConfigKey> keys = build_keys();
  return keys;
}

Config default_config() {
  Config config;
  for (const auto& key : config_keys()) {
    Status set = key.set(config, YAML::Load(std::string(key.default_value)));
    if (!set) throw std::logic_error(fmt::format("default of {}: {}", key.path, set.message()));
  }
  return config;
}

Result<Config> parse_config(std::string_view yaml, const std::string& name) {
  Config config = default_config();
  try {
    const YAML::Node root = load_yaml_strict(std::string(yaml));
    if (Status applied = apply_yaml(config, root, name); !applied) return applied;
  } catch (const YAML::Exception& e) {
    return Status::error(fmt::format("{}:{}: {}", name, e.mark.line + 1, e.msg));
  }
  return config;
}

Result<Config> load_config(const std::string& path) {
  std::ifstream file(path);
  if (!file) return Status::error(fmt::format("{}: cannot read the file", path));
  std::ostringstream text;
  text << file.rdbuf();
  return parse_config(text.str(), path);
}

Result<Config> load_config_or_defaults(const std::string& path) {
  return std::filesystem::exists(path) ? load_config(path) : Result<Config>(default_config());
}

}  // namespace smtpscope
