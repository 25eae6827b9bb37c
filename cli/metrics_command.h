// `smtpscope metrics`: what the database says about the population, as
// Prometheus text for node_exporter's textfile collector or a scrape:
// sessions per pattern and per HELO quirk, and the anomaly score of the
// top-N clients. Unlike the daemons' metrics, these carry client addresses
// as label values, but only for the `top` most anomalous clients (bounded:
// at most max_top series). Printed to stdout, written to a file atomically
// (a temporary file beside it, then rename), or served over HTTP (each
// scrape reads the database again). On a PostgreSQL store, the fleet's
// population from the analysis each host forwarded.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "client_population.h"
#include "database_access.h"
#include "patterns.h"

namespace smtpscope::cli {

struct MetricsOptions {
  StoreLocation database;      // an SQLite file or a PostgreSQL store
  std::string since;           // only sessions newer than this (duration text)
  std::size_t top = 20;        // clients with a score series
  std::string patterns_file;   // empty: the built-in patterns
  std::string out;             // write here instead of stdout
  std::string listen;          // serve over HTTP instead
};

inline constexpr std::size_t max_top_clients = 1000;

// The exposition text for analysed clients (most anomalous first) and the
// pattern set they were analysed with; `now_s` stamps it.
std::string render_population_metrics(const Population& population,
                                      const analysis::PatternSet& patterns, std::size_t top,
                                      double now_s);

// Exit codes: 0 success, 1 runtime failure, 2 usage error.
int run_metrics(const MetricsOptions& options);

}  // namespace smtpscope::cli
