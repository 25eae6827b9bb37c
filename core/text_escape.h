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
// is kept. Output longer than max_bytes is cut and ends with "...".
std::string printable(std::string_view raw, std::size_t max_bytes = 512);

// HTML text/attribute escaping of & < > " ' (applied after printable()).
std::string html_escape(std::string_view text);

// Length of the valid UTF-8 sequence starting at text[i] (2 to 4), or 0 when
// the byte there does not start one (overlong forms and surrogates included).
std::size_t utf8_sequence_length(std::string_view text, std::size_t i);

// Cuts raw to at most max_bytes without splitting a UTF-8 sequence.
std::string_view bounded(std::string_view raw, std::size_t max_bytes);

}  // namespace smtpscope
