// Fuzzes the HELO classifier: NUL-separated fields are the HELO argument,
// the client address, Postfix's verified name, our host name and address,
// and the protocol. Invariants: no quirk is reported twice for one HELO;
// the HELO and the client's names as the terminal shows them (printable())
// carry no control character, C1 control or bidi override raw.
#include <set>
#include <string>

#include "display_safe.h"
#include "fuzz_input.h"
#include "helo_quirks.h"
#include "text_escape.h"

using namespace smtpscope;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto field = fuzz::fields(fuzz::as_text(data, size), 6);
  const analysis::HeloContext context{std::string(field[1]), std::string(field[2]),
                                      std::string(field[3]), std::string(field[4]),
                                      std::string(field[5])};
  const auto quirks = analysis::classify_helo(field[0], context);
  std::set<analysis::HeloQuirk> distinct(quirks.begin(), quirks.end());
  fuzz::require(distinct.size() == quirks.size(), "each quirk once");
  for (const auto quirk : quirks) fuzz::require(!analysis::to_string(quirk).empty(), "named");
  for (const auto text : {field[0], field[2]}) {
    fuzz::require(fuzz::display_safe(printable(text)), "HELO shown without raw controls");
  }
  return 0;
}
