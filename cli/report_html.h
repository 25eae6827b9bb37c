// The per-client report as one self-contained HTML page: no scripts, fonts
// or external resources (a Content-Security-Policy forbids them), a
// timeline chart per session as inline SVG, pattern, quirk and fingerprint
// tables, the explanation and the advice. Every client-supplied string is
// made printable and HTML-escaped; the page stays data however hostile the
// HELO or addresses were.
#pragma once

#include <string>

#include "client_report.h"

namespace smtpscope::cli {

std::string render_report_html(const ClientSummary& client);

}  // namespace smtpscope::cli
