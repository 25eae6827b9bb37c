// Colour for text output, only on a terminal: when stdout is a TTY and
// NO_COLOR is not set, sources and headings are coloured with ANSI codes;
// in pipes and files the text stays plain (and aligned either way).
#pragma once

#include <string>

namespace smtpscope::cli {

bool colour_wanted();
// Colours the known markers of a rendered text (source column, headings).
std::string colourize(const std::string& text);

}  // namespace smtpscope::cli
