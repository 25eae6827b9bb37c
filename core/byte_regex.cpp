#include "byte_regex.h"

namespace smtpscope {

Result<std::shared_ptr<const re2::RE2>> compile_byte_regex(const std::string& text) {
  re2::RE2::Options options;
  options.set_encoding(re2::RE2::Options::EncodingLatin1);
  options.set_log_errors(false);
  auto compiled = std::make_shared<const re2::RE2>(text, options);
  if (!compiled->ok()) return Status::error(compiled->error());
  return compiled;
}

}  // namespace smtpscope
