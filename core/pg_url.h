// The PostgreSQL database URL smtpscope accepts (database.url, --db) and the
// password that goes with it.
//
// Accepted: postgresql://[user@][host][:port][/database][?key=value&...]
// (or postgres://), host a name, IPv4 address or [IPv6] address; the unix
// socket form leaves the host empty and names the socket directory in the
// query: postgresql://user@/db?host=/run/postgresql. Percent escapes (%40)
// are decoded. One host only; query keys are limited to host, port, sslmode,
// sslrootcert, sslcert, sslkey, connect_timeout and application_name.
//
// A password is never taken from the URL: a command line is visible to every
// local user (ps) and configuration files are often world-readable, so a URL
// with a password (user:secret@ or ?password=) is refused with a message that
// says where the password goes instead: the file named by
// database.password_file, or SMTPSCOPE_DB_PASSWORD / PGPASSWORD in the
// environment. No message of this file ever contains a password: errors show
// the URL through redact_url_text(), parsed URLs through display().
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "result.h"

namespace smtpscope::pg {

inline constexpr std::size_t kMaxUrlBytes = 4096;
inline constexpr std::size_t kMaxPasswordBytes = 1024;

struct Url {
  std::string user;  // empty: libpq's default (the operating system user)
  std::string host;  // name or address (IPv6 without brackets), or a socket
                     // directory (starts with '/'); empty: libpq's default
  std::optional<std::uint16_t> port;
  std::string database;  // empty: libpq's default (the user name)
  // The other query keys (sslmode, connect_timeout, ...) in URL order,
  // decoded; host and port from the query are in the fields above.
  std::vector<std::pair<std::string, std::string>> options;
};

// True when text names a PostgreSQL database (postgresql:// or postgres://)
// rather than an SQLite file.
bool is_pg_url(std::string_view text);

// Parses text; every error names the URL without its password.
Result<Url> parse_url(std::string_view text);

// The URL for messages and logs: printable, never a password (Url holds
// none). The socket form shows its directory as ?host=.
std::string display(const Url& url);

// Text that may not be a valid URL, for error messages: any password of
// the user part and any password= value removed, made printable. Removes
// too much rather than too little when the text is malformed.
std::string redact_url_text(std::string_view text);

// Where the password may come from, in this order: the file named by
// database.password_file, SMTPSCOPE_DB_PASSWORD, PGPASSWORD.
struct PasswordSources {
  std::string password_file;                  // empty: none configured
  std::optional<std::string> smtpscope_env;   // SMTPSCOPE_DB_PASSWORD
  std::optional<std::string> pgpassword_env;  // PGPASSWORD
  // The two variables from this process's environment.
  static PasswordSources from_environment(std::string password_file);
};

// The password, or none (libpq may still find one in ~/.pgpass, or the
// server need none). The file must be a regular file not readable by every
// user (mode 0600 or 0640), hold 1 to kMaxPasswordBytes bytes and no NUL; one
// trailing newline (\n or \r\n) is not part of the password. A configured
// file that fails these is an error (naming the file, never its content),
// not a fall-back to the environment. Empty variables count as unset.
Result<std::optional<std::string>> resolve_password(const PasswordSources& sources);

}  // namespace smtpscope::pg
