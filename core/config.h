// smtpscope's configuration: the values, and the table of keys that defines
// them. Every key has a name, type, default, allowed range and a doc line;
// the defaults of Config come from that table, and the example file
// conf/smtpscope.yaml is checked against it by a test.
// load_config() never throws: a bad file or value is an error naming the
// file, line and key. A Config is an immutable snapshot once loaded.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "result.h"

namespace YAML {
class Node;
}

namespace smtpscope {

struct Config {
  struct Database {
    std::string path;
    int busy_timeout_ms = 0;
    std::string url;            // postgresql://... : the fleet store; empty: SQLite only
    std::string password_file;  // the fleet store's password (owner-readable only)
    std::size_t spool_max_events = 0;  // events not yet forwarded, at most
    int forward_interval_ms = 0;
  } database;
  struct Store {
    std::size_t queue_capacity = 0;
    std::size_t queue_bytes = 0;
    std::size_t batch_size = 0;
    int batch_interval_ms = 0;
    int retry_interval_ms = 0;
  } store;
  struct Milter {
    std::string socket;
    mode_t socket_mode = 0;
    int timeout_s = 0;
    std::vector<std::string> macros;
    std::vector<std::string> headers;
    bool record_body_size = false;
    std::size_t max_recipients = 0;
    std::size_t max_headers = 0;
    std::size_t max_value_bytes = 0;
    std::string pid_file;
  } milter;
  struct Policy {
    std::vector<std::string> listen;
    mode_t socket_mode = 0;
    std::string rules_file;
    std::size_t max_line_bytes = 0;
    std::size_t max_request_bytes = 0;
    std::size_t max_attributes = 0;
    std::size_t max_value_bytes = 0;
    int idle_timeout_s = 0;
    int request_timeout_s = 0;
    std::size_t max_connections = 0;
    std::size_t max_output_bytes = 0;
    int history_cache_s = 0;
    std::string pid_file;
  } policy;
  struct Ingest {
    std::size_t max_line_bytes = 0;
  } ingest;
  struct Analysis {
    std::string patterns_file;  // empty: the built-in patterns
    int interval_ms = 0;        // 0: the daemons and ingest leave analysis to the commands
  } analysis;
  struct Metrics {
    std::string milter_listen;  // empty: no metrics endpoint
    std::string policy_listen;
  } metrics;
  struct Daemon {
    std::string user;
    std::string group;
    bool allow_root = false;
    std::string host;  // the MTA host sessions are recorded under; empty: this machine's name
  } daemon;
  struct Logging {
    std::string level;
    std::string target;
  } logging;
};

// One configuration key: what it is and how to set it from YAML.
struct ConfigKey {
  std::string_view path;           // "milter.socket"
  std::string_view type;           // for docs and errors
  std::string_view default_value;  // YAML text of the default
  std::string_view doc;
  std::function<Status(Config&, const YAML::Node&)> set;
};

const std::vector<ConfigKey>& config_keys();

// All defaults from the table.
Config default_config();

Result<Config> load_config(const std::string& path);
// The file at path, or the defaults when there is none (the commands run
// without /etc/smtpscope/smtpscope.yaml); a file that exists must load.
Result<Config> load_config_or_defaults(const std::string& path);
// Parses YAML text; `name` stands for the file in error messages.
Result<Config> parse_config(std::string_view yaml, const std::string& name);

}  // namespace smtpscope
