// Making untrusted client strings safe on the way out. Every string that came
// from the network passes through one of these before it reaches a log line,
// a terminal or an HTML page. Storage keeps the raw bytes (bound parameters).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smtpscope {

// Printable form for logs and terminals: control bytes, DEL, backslash and
// bytes that are not valid UTF-8 become C escapes (\n, \\, \x1b); valid UTF-8
// is kept, except the code points a terminal or a browser acts on instead of
// showing: C1 controls (U+0080..U+009F, e.g. CSI U+009B) and the bidi and
// line-breaking format characters (U+061C, U+200E, U+200F, U+2028..U+202E,
// U+2066..U+2069), which become \u escapes (\u009b, \u202e). Output longer
// than max_bytes is cut and ends with "...".
std::string printable(std::string_view raw, std::size_t max_bytes = 512);

// A client string as one quoted log field, quotes included: printable(), with
// '"' escaped too, so the value cannot end its field and forge others
// (`text=` + log_quoted(x) always parses back as one key="value" pair).
// The helper every daemon uses for every client string it logs.
std::string log_quoted(std::string_view raw, std::size_t max_bytes = 256);

// HTML text/attribute escaping of & < > " ' (applied after printable()).
std::string html_escape(std::string_view text);

// Length of the valid UTF-8 sequence starting at text[i] (2 to 4), or 0 when
// the byte there does not start one (overlong forms and surrogates included).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i);

// Cuts raw to at most max_bytes without splitting a UTF-8 sequence.
std::string_view bounded(std::string_view raw, std::size_t max_bytes);

}  // namespace smtpscope
