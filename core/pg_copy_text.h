// Values in the text format of PostgreSQL's COPY FROM STDIN: what the
// fleet store's bulk writers (db copy, the forwarder) send. Promises: a
// value appended here reads back in PostgreSQL as the same text, except
// the bytes PostgreSQL text cannot hold (invalid UTF-8, NUL), which become
// U+FFFD and are reported.
#pragma once

#include <string>
#include <string_view>

#include "sqlite.h"

namespace smtpscope::pg {

// Appends value in COPY's text format: backslash, tab, newline and
// carriage return escaped; invalid UTF-8 and NUL replaced by U+FFFD.
// Returns true when something was replaced.
bool append_copy_field(std::string& out, std::string_view value);

// Appends column `column` of the row `row` is on: NULL as COPY's \N, a
// floating-point number with every digit (SQLite's text keeps 15), the
// rest as append_copy_field. Returns true when something was replaced.
bool append_copy_column(std::string& out, const sqlite::Statement& row, int column);

}  // namespace smtpscope::pg
