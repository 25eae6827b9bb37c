#include "pg_url.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>

#include "text_escape.h"

namespace smtpscope::pg {
namespace {

constexpr std::string_view kSchemes[] = {"postgresql://", "postgres://"};
constexpr std::array<std::string_view, 6> kOptionKeys = {
    "sslmode", "sslrootcert", "sslcert", "sslkey", "connect_timeout", "application_name"};
constexpr std::string_view kPasswordAdvice =
    "put the password in the file named by database.password_file (mode 0600 or 0640) "
    "or in the environment (SMTPSCOPE_DB_PASSWORD or PGPASSWORD)";

std::size_t scheme_length(std::string_view text) {
  for (std::string_view scheme : kSchemes) {
    if (text.substr(0, scheme.size()) == scheme) return scheme.size();
  }
  return 0;
}

Status url_error(std::string_view text, std::string_view what) {
  return Status::error(fmt::format("database URL {}: {}", redact_url_text(text), what));
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Decodes %XX escapes; NUL (libpq takes C strings) and bad escapes fail.
std::optional<std::string> percent_decode(std::string_view raw) {
  std::string out;
  out.reserve(raw.size());
  for (std::size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '%') {
      if (i + 2 >= raw.size()) return std::nullopt;
      int high = hex_value(raw[i + 1]);
      int low = hex_value(raw[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      c = static_cast<char>(high * 16 + low);
      i += 2;
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  while (true) {
    std::size_t end = text.find(separator);
    parts.push_back(text.substr(0, end));
    if (end == std::string_view::npos) return parts;
    text = text.substr(end + 1);
  }
}

// The user part of a URL without its scheme: before the last '@' of the
// authority (up to the first '/' or '?'); greedy, before the last '@' of
// all the text, for text that may be malformed (a password with a raw '/').
std::optional<std::string_view> user_part(std::string_view after_scheme, bool greedy) {
  std::string_view authority =
      greedy ? after_scheme : after_scheme.substr(0, after_scheme.find_first_of("/?"));
  std::size_t at = authority.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  return authority.substr(0, at);
}

bool is_password_key(std::string_view key) { return key == "password" || key == "passfile"; }

Result<std::uint16_t> parse_port(std::string_view text, std::string_view raw) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(raw.data(), raw.data() + raw.size(), value);
  if (raw.empty() || ec != std::errc() || end != raw.data() + raw.size() || value == 0 ||
      value > 65535) {
    return url_error(
        text, fmt::format("port \"{}\" is not a number from 1 to 65535", printable(raw, 16)));
  }
  return static_cast<std::uint16_t>(value);
}

// host[:port] or [v6][:port] into url.
Status parse_host_port(std::string_view text, std::string_view raw, Url& url) {
  std::string_view host = raw;
  std::optional<std::string_view> port;
  if (!raw.empty() && raw.front() == '[') {
    std::size_t close = raw.find(']');
    if (close == std::string_view::npos) return url_error(text, "unclosed [ of an IPv6 address");
    host = raw.substr(1, close - 1);
    std::string_view rest = raw.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') return url_error(text, "junk after an IPv6 address");
    if (!rest.empty()) port = rest.substr(1);
  } else if (std::size_t colon = raw.find(':'); colon != std::string_view::npos) {
    host = raw.substr(0, colon);
    port = raw.substr(colon + 1);
  }
  if (host.find(',') != std::string_view::npos) {
    return url_error(text, "more than one host; smtpscope connects to one");
  }
  auto decoded = percent_decode(host);
  if (!decoded) return url_error(text, "bad percent escape in the host");
  url.host = std::move(*decoded);
  if (port) {
    auto number = parse_port(text, *port);
    if (!number) return number.status();
    url.port = number.value();
  }
  return Status::ok();
}

Status parse_query(std::string_view text, std::string_view query, Url& url) {
  for (std::string_view pair : split(query, '&')) {
    if (pair.empty()) continue;
    std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      return url_error(text, fmt::format("query item \"{}\" has no '='", printable(pair, 64)));
    }
    auto key = percent_decode(pair.substr(0, eq));
    auto value = percent_decode(pair.substr(eq + 1));
    if (!key || !value) return url_error(text, "bad percent escape in the query");
    if (*key == "host") {
      if (!url.host.empty()) return url_error(text, "host given twice (before / and in ?host=)");
      url.host = std::move(*value);
    } else if (*key == "port") {
      if (url.port) return url_error(text, "port given twice (after the host and in ?port=)");
      auto number = parse_port(text, *value);
      if (!number) return number.status();
      url.port = number.value();
    } else if (std::find(kOptionKeys.begin(), kOptionKeys.end(), *key) != kOptionKeys.end()) {
      url.options.emplace_back(std::move(*key), std::move(*value));
    } else {
      return url_error(text, fmt::format("unknown query key \"{}\" (accepted: host, port, {})",
                                         printable(*key, 64), fmt::join(kOptionKeys, ", ")));
    }
  }
  return Status::ok();
}

bool has_password(std::string_view after_scheme) {
  auto user = user_part(after_scheme, false);
  if (user && user->find(':') != std::string_view::npos) return true;
  std::size_t question = after_scheme.find('?');
  if (question == std::string_view::npos) return false;
  for (std::string_view pair : split(after_scheme.substr(question + 1), '&')) {
    auto key = percent_decode(pair.substr(0, pair.find('=')));
    if (key && is_password_key(*key)) return true;
  }
  return false;
}

Result<std::string> read_password_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    return Status::error(fmt::format("password file {}: {}", path, std::strerror(errno)));
  }
  struct stat st {};
  std::string content;
  Status status = Status::ok();
  if (::fstat(fd, &st) != 0) {
    status = Status::error(fmt::format("password file {}: {}", path, std::strerror(errno)));
  } else if (!S_ISREG(st.st_mode)) {
    status = Status::error(fmt::format("password file {}: not a regular file", path));
  } else if ((st.st_mode & S_IROTH) != 0) {
    status = Status::error(
        fmt::format("password file {}: readable by every user (mode {:04o}); chmod o-rwx it", path,
                    st.st_mode & 07777));
  } else {
    content.resize(kMaxPasswordBytes + 3);  // + "\r\n" + one byte too many
    std::size_t got = 0;
    while (got < content.size()) {
      ssize_t n = ::read(fd, content.data() + got, content.size() - got);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        status = Status::error(fmt::format("password file {}: {}", path, std::strerror(errno)));
        break;
      }
      if (n == 0) break;
      got += static_cast<std::size_t>(n);
    }
    content.resize(got);
  }
  ::close(fd);
  if (!status) return status;
  if (content.ends_with("\r\n")) {
    content.resize(content.size() - 2);
  } else if (content.ends_with('\n')) {
    content.pop_back();
  }
  if (content.empty()) return Status::error(fmt::format("password file {}: empty", path));
  if (content.size() > kMaxPasswordBytes) {
    return Status::error(
        fmt::format("password file {}: longer than {} bytes", path, kMaxPasswordBytes));
  }
  if (content.find('\0') != std::string::npos) {
    return Status::error(fmt::format("password file {}: contains a NUL byte", path));
  }
  return content;
}

std::optional<std::string> non_empty_env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

}  // namespace

bool is_pg_url(std::string_view text) { return scheme_length(text) != 0; }

Result<Url> parse_url(std::string_view text) {
  if (text.size() > kMaxUrlBytes) {
    // Not shown: a cut text could show a password whose '@' was cut off.
    return Status::error(
        fmt::format("database URL of {} bytes: longer than {} bytes", text.size(), kMaxUrlBytes));
  }
  std::size_t start = scheme_length(text);
  if (start == 0) return url_error(text, "does not start with postgresql:// or postgres://");
  std::string_view rest = text.substr(start);
  if (has_password(rest)) {
    return url_error(text, fmt::format("a password in the URL is refused (command lines and "
                                       "configuration files are read by others); {}",
                                       kPasswordAdvice));
  }
  Url url;
  std::size_t question = rest.find('?');
  std::string_view query = question == std::string_view::npos ? "" : rest.substr(question + 1);
  rest = rest.substr(0, question);
  if (std::size_t hash = query.find('#'); hash != std::string_view::npos) {
    return url_error(text, "a '#' fragment is not part of a database URL");
  }
  std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  if (slash != std::string_view::npos) {
    if (rest.find('@', slash) != std::string_view::npos) {
      return url_error(text, "'@' after the host (percent-encode it as %40 in a database name)");
    }
    auto database = percent_decode(rest.substr(slash + 1));
    if (!database) return url_error(text, "bad percent escape in the database name");
    if (database->find('/') != std::string::npos) {
      return url_error(text, "database name contains '/'");
    }
    url.database = std::move(*database);
  }
  if (std::size_t at = authority.rfind('@'); at != std::string_view::npos) {
    auto user = percent_decode(authority.substr(0, at));
    if (!user) return url_error(text, "bad percent escape in the user name");
    url.user = std::move(*user);
    authority = authority.substr(at + 1);
  }
  if (Status host = parse_host_port(text, authority, url); !host) return host;
  if (Status options = parse_query(text, query, url); !options) return options;
  return url;
}

std::string display(const Url& url) {
  std::string out = "postgresql://";
  if (!url.user.empty()) out += printable(url.user, 128) + "@";
  bool socket = !url.host.empty() && url.host.front() == '/';
  if (!socket) {
    out += url.host.find(':') != std::string::npos ? "[" + printable(url.host, 256) + "]"
                                                   : printable(url.host, 256);
    if (url.port) out += fmt::format(":{}", *url.port);
  }
  if (!url.database.empty() || socket || !url.options.empty()) out += "/";
  out += printable(url.database, 128);
  std::vector<std::string> query;
  if (socket) {
    query.push_back("host=" + printable(url.host, 256));
    if (url.port) query.push_back(fmt::format("port={}", *url.port));
  }
  for (const auto& [key, value] : url.options) {
    query.push_back(printable(key, 64) + "=" + printable(value, 256));
  }
  if (!query.empty()) out += fmt::format("?{}", fmt::join(query, "&"));
  return out;
}

std::string redact_url_text(std::string_view text) {
  std::size_t start = scheme_length(text);
  if (start == 0) start = text.find("://") == std::string_view::npos ? 0 : text.find("://") + 3;
  std::string out(text.substr(0, start));
  std::string_view rest = text.substr(start);
  if (auto user = user_part(rest, true)) {
    out += user->substr(0, user->find(':'));
    rest = rest.substr(user->size());  // from the '@'
  }
  // Query values of password keys go; keys and other values stay.
  std::size_t question = rest.find('?');
  out += rest.substr(0, question);
  if (question != std::string_view::npos) {
    std::vector<std::string_view> kept;
    for (std::string_view pair : split(rest.substr(question + 1), '&')) {
      std::string_view key = pair.substr(0, pair.find('='));
      auto decoded = percent_decode(key);
      kept.push_back(!decoded || is_password_key(*decoded) ? key : pair);
    }
    out += fmt::format("?{}", fmt::join(kept, "&"));
  }
  return printable(out, 512);
}

PasswordSources PasswordSources::from_environment(std::string password_file) {
  return {std::move(password_file), non_empty_env("SMTPSCOPE_DB_PASSWORD"),
          non_empty_env("PGPASSWORD")};
}

Result<std::optional<std::string>> resolve_password(const PasswordSources& sources) {
  if (!sources.password_file.empty()) {
    auto password = read_password_file(sources.password_file);
    if (!password) return password.status();
    return std::optional<std::string>(std::move(password).value());
  }
  for (const auto* variable : {&sources.smtpscope_env, &sources.pgpassword_env}) {
    if (!*variable || (*variable)->empty()) continue;
    if ((*variable)->size() > kMaxPasswordBytes) {
      return Status::error(
          fmt::format("{}: longer than {} bytes",
                      variable == &sources.smtpscope_env ? "SMTPSCOPE_DB_PASSWORD" : "PGPASSWORD",
                      kMaxPasswordBytes));
    }
    return std::optional<std::string>(**variable);
  }
  return std::optional<std::string>();
}

}  // namespace smtpscope::pg
