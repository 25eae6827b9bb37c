// `smtpscope servers`: remote servers as Postfix's smtp client saw them:
// deliveries, failures, verification probes and where in the dialogue
// connections were lost or timed out. A server whose failures cluster on
// probes and on one command (typically "while sending RCPT TO" right after
// a pipelined MAIL) is named with the known workarounds.
#pragma once

#include <string>

#include "database_access.h"

namespace smtpscope::cli {

// database: an SQLite file or a PostgreSQL store.
int run_servers(const StoreLocation& database, const std::string& format);

}  // namespace smtpscope::cli
