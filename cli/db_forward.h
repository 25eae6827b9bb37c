// `smtpscope db forward`: sends what the local SQLite file holds and the
// fleet store (PostgreSQL) does not yet, now, until caught up, the way the
// daemons' forwarder does in the background (pg_forwarder.h): a host's
// history when it joins a fleet, a spool after a long outage, the rows of
// policy servers run by spawn(8), or an ingest of logs copied from other
// hosts. Takes turns with the daemons' forwarder on the same file; run
// again, it sends only what is new.
#pragma once

#include <string>

namespace smtpscope::cli {

struct DbForwardOptions {
  std::string database;     // the local SQLite file
  std::string config_path;  // database.url, password_file and daemon.host when not given here
  std::string to;           // postgresql://...; empty: the configuration's database.url
  std::string password_file;
  std::string host;  // names sessions without a host; empty: daemon.host or this machine's name
  bool quiet = false;
};

// Exit status: 0 caught up, 1 a failure on the way, 2 no or a bad URL.
int run_db_forward(const DbForwardOptions& options);

}  // namespace smtpscope::cli
