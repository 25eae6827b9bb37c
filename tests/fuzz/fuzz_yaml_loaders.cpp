// Fuzzes the three YAML loaders with one input: the daemon configuration,
// the pattern file and the policy rules. Each must either load or return an
// error that names the file (never throw, crash or hang).
#include <string>

#include "config.h"
#include "fuzz_input.h"
#include "patterns.h"
#include "rules.h"

using namespace smtpscope;

namespace {

template <typename Loaded>
void check(const Result<Loaded>& loaded) {
  if (!loaded) fuzz::require(loaded.message().find("fuzz.yaml") != std::string::npos,
                             "an error names the file");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(fuzz::as_text(data, size));
  check(parse_config(text, "fuzz.yaml"));
  check(analysis::parse_patterns(text, "fuzz.yaml"));
  check(policy::parse_rules(text, "fuzz.yaml"));
  return 0;
}
