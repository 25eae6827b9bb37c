// Regular expressions from smtpscope's own files (pattern stages, policy
// rules) compiled with RE2: matching takes time linear in the subject and
// no recursion, whatever the subject (a 56 KB stage string, a client's
// 64 KiB attribute). Compiled as Latin-1 so a pattern matches bytes, as
// client strings need not be UTF-8. RE2 syntax: no backreferences, no
// lookaround.
#pragma once

#include <re2/re2.h>

#include <memory>
#include <string>

#include "result.h"

namespace smtpscope {

// The compiled expression, or RE2's reason it is not one (never logged).
Result<std::shared_ptr<const re2::RE2>> compile_byte_regex(const std::string& text);

}  // namespace smtpscope
