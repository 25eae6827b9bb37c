// Reading a log message from the front: consume() takes a known prefix off
// the text when it is there. Shared by the message parsers of ingest/.
#pragma once

#include <string_view>

namespace smtpscope::ingest {

// True (and the prefix removed) when text starts with prefix; else text is
// left as it was.
inline bool consume(std::string_view& text, std::string_view prefix) {
  if (!text.starts_with(prefix)) return false;
  text.remove_prefix(prefix.size());
  return true;
}

}  // namespace smtpscope::ingest
