#include "yaml_load.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <set>

namespace smtpscope {
namespace {

// Checks every mapping in the tree; a scalar key seen twice in one mapping
// is an error at the second one. Non-scalar keys (rare, and unused by our
// files) are compared by their dumped text.
void refuse_duplicate_keys(const YAML::Node& node) {
  if (node.IsSequence()) {
    for (const auto& item : node) refuse_duplicate_keys(item);
    return;
  }
  if (!node.IsMap()) return;
  std::set<std::string> seen;
  for (const auto& entry : node) {
    const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : YAML::Dump(entry.first);
    if (!seen.insert(key).second) {
      throw YAML::ParserException(entry.first.Mark(),
                                  fmt::format("key \"{}\" appears twice in one mapping", key));
    }
    refuse_duplicate_keys(entry.second);
  }
}

}  // namespace

YAML::Node load_yaml_strict(const std::string& text) {
  YAML::Node root = YAML::Load(text);
  refuse_duplicate_keys(root);
  return root;
}

}  // namespace smtpscope
