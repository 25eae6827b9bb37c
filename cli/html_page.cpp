#include "html_page.h"

#include <fmt/format.h>

#include "text_escape.h"

namespace smtpscope::cli {
namespace {

constexpr std::string_view base_style = R"(
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#1d2330;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:.5em 0;width:100%} td,th{border:1px solid #d5d8e0;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f0f2f7} .muted{color:#667}
)";

}  // namespace

std::string html_text(std::string_view raw, std::size_t max) {
  return html_escape(printable(raw, max));
}

std::string html_page_head(std::string_view title, std::string_view extra_style) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'\">"
      "<title>{}</title><style>{}{}</style></head><body>\n",
      html_text(title, 512), base_style, extra_style);
}

}  // namespace smtpscope::cli
