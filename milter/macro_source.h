// Read access to the Postfix macros of the current milter stage. The libmilter
// implementation wraps smfi_getsymval(); tests supply a map. Every macro is
// optional: Postfix sends only those main.cf lists.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace smtpscope::milter {

class MacroSource {
 public:
  virtual ~MacroSource() = default;
  virtual std::optional<std::string> get(std::string_view name) const = 0;
};

}  // namespace smtpscope::milter
