// What every smtpscope HTML page shares: the head (charset, a
// Content-Security-Policy that allows no script and no outside resource,
// title, the base stylesheet plus the page's own rules) and the one way a
// client string enters markup (made printable, then HTML-escaped).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace smtpscope::cli {

// Client text for HTML: printable() (bounded to max bytes) then html_escape().
std::string html_text(std::string_view raw, std::size_t max);

// "<!DOCTYPE html>...<body>\n"; `title` is escaped here, `extra_style` is
// our own CSS added after the base rules.
std::string html_page_head(std::string_view title, std::string_view extra_style);

}  // namespace smtpscope::cli
