#include "terminal_style.h"

#include <unistd.h>

#include <array>
#include <cstdlib>
#include <utility>

namespace smtpscope::cli {

bool colour_wanted() { return ::isatty(STDOUT_FILENO) && std::getenv("NO_COLOR") == nullptr; }

std::string colourize(const std::string& text) {
  static const std::array<std::pair<std::string, std::string>, 6> markers = {{
      {"  milter  ", "  \033[34mmilter\033[0m  "},
      {"  policy  ", "  \033[35mpolicy\033[0m  "},
      {"  log     ", "  \033[32mlog\033[0m     "},
      {"Most likely:", "\033[1;33mMost likely:\033[0m"},
      {"Anomaly score:", "\033[1mAnomaly score:\033[0m"},
      {"-- transaction aborted", "\033[31m-- transaction aborted\033[0m"},
  }};
  std::string out = text;
  for (const auto& [plain, coloured] : markers) {
    for (std::size_t at = out.find(plain); at != std::string::npos;
         at = out.find(plain, at + coloured.size())) {
      out.replace(at, plain.size(), coloured);
    }
  }
  return out;
}

}  // namespace smtpscope::cli
