// `smtpscope discover`: what no pattern names yet. Reads the sessions,
// analyses them with the patterns (built in, or --patterns FILE), and groups
// those no pattern names by their shape (analysis/shape_groups.h); ranks the
// groups by sessions and distinct clients and shows, for each, an example
// timeline and a ready patterns.yaml entry the admin can name and keep.
// Text for terminals (client strings through printable()), JSON for
// scripts (docs/json.md). Reads only; stores nothing.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "client_report.h"

namespace smtpscope::cli {

struct DiscoverOptions {
  std::string database;
  std::string since;             // only sessions newer than this (duration text)
  std::size_t limit = 100000;    // the most recent sessions analysed at most
  std::size_t top = 10;          // groups shown
  std::size_t min_sessions = 2;  // smaller groups are not shown
  std::string format = "text";   // text or json
  std::string patterns_file;     // empty: the built-in patterns
};

// The report over analysed clients (by_client's output).
std::string render_discover_text(const std::vector<ClientSummary>& clients,
                                 const DiscoverOptions& options);
std::string render_discover_json(const std::vector<ClientSummary>& clients,
                                 const DiscoverOptions& options);

// Exit codes: 0 success, 1 runtime failure, 2 usage error.
int run_discover(const DiscoverOptions& options);

}  // namespace smtpscope::cli
