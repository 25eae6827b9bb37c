// Loading YAML text for smtpscope's own files (configuration, patterns,
// rules). yaml-cpp accepts a mapping that names one key twice and keeps
// both entries, so "last wins" or "first wins" depends on who reads it;
// load_yaml_strict() refuses such a file instead, naming the line of the
// second occurrence. It throws YAML::Exception (with the mark of the
// offending key) like YAML::Load, so callers keep one catch for both.
#pragma once

#include <string>

namespace YAML {
class Node;
}

namespace smtpscope {

// Parses `text`; throws YAML::ParserException on a syntax error or on a
// key repeated within one mapping (at any depth).
YAML::Node load_yaml_strict(const std::string& text);

}  // namespace smtpscope
