// The server at a glance, as one self-contained HTML page (the report
// command's --format html without --client): the clients ranked by anomaly
// score with their patterns, HELO quirks and fingerprints, each linked to
// its own report page when those are written beside it; the patterns over
// time as a stacked SVG chart; which fingerprints and HELO quirks go with
// which patterns (the correlate command's table); and what to do about
// each pattern present. Like the per-client report: no script, font or
// external resource (a Content-Security-Policy forbids them), every client
// string made printable and HTML-escaped. Bounded for large servers: the
// top N clients and associations, with the totals shown.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "client_report.h"
#include "correlation.h"
#include "pattern_timeline.h"

namespace smtpscope::cli {

struct OverviewOptions {
  std::size_t top_clients = 100;
  std::size_t top_associations = 40;
  bool link_clients = false;  // client pages written beside it, named by client_page_name()
};

std::string render_overview_html(const std::vector<ClientSummary>& clients,
                                 const std::vector<analysis::Association>& associations,
                                 const std::vector<TimedCount>& sessions_over_time,
                                 const OverviewOptions& options);

// A file name for a client's report page, safe whatever the address holds:
// "client-192.0.2.1.html", "client-2001_db8__1.html"; a name that had to
// be changed beyond ':' gets a hash of the original so two cannot collide.
std::string client_page_name(const std::string& client_addr);

}  // namespace smtpscope::cli
