#include "attribute_patch.h"

#include <string_view>

#include "json_text.h"

namespace smtpscope {
namespace {

// The base's attribute of this name; bases are usually in the event's own
// order (Postfix sends a policy request's attributes in a fixed order), so
// the same position is tried first.
const Attribute* find(const std::vector<Attribute>& base, std::string_view name,
                      std::size_t hint) {
  if (hint < base.size() && base[hint].name == name) return &base[hint];
  for (const Attribute& a : base) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

bool repeated(const std::vector<Attribute>& attributes, std::size_t i) {
  for (std::size_t j = 0; j < i; ++j) {
    if (attributes[j].name == attributes[i].name) return true;
  }
  return false;
}

void append_member(std::string& out, std::string_view name) {
  if (out.size() > 1) out += ',';
  append_json_string(out, name);
  out += ':';
}

}  // namespace

std::vector<Attribute> distinct_attributes(const std::vector<Attribute>& attributes) {
  std::vector<Attribute> distinct;
  distinct.reserve(attributes.size());
  for (std::size_t i = 0; i < attributes.size(); ++i) {
    if (!repeated(attributes, i)) distinct.push_back(attributes[i]);
  }
  return distinct;
}

std::vector<Attribute> common_attributes(const std::vector<Attribute>& attributes,
                                         const std::vector<Attribute>& other) {
  std::vector<Attribute> common;
  for (std::size_t i = 0; i < attributes.size(); ++i) {
    const Attribute* same = find(other, attributes[i].name, i);
    if (same && same->value == attributes[i].value && !repeated(attributes, i)) {
      common.push_back(attributes[i]);
    }
  }
  return common;
}

std::size_t json_bytes(const std::vector<Attribute>& attributes) {
  std::size_t bytes = 2;
  for (const Attribute& a : attributes) bytes += a.name.size() + a.value.size() + 6;
  return bytes;
}

AttributePatch attributes_patch(const std::vector<Attribute>& attributes,
                                const std::vector<Attribute>& base) {
  AttributePatch patch{"{", 2};
  std::string& out = patch.text;
  std::size_t found = 0;  // base names the event has
  for (std::size_t i = 0; i < attributes.size(); ++i) {
    const Attribute& a = attributes[i];
    if (repeated(attributes, i)) continue;
    patch.whole_bytes += a.name.size() + a.value.size() + 6;
    const Attribute* same = find(base, a.name, i);
    if (same) ++found;
    if (same && same->value == a.value) continue;
    append_member(out, a.name);
    append_json_string(out, a.value);
  }
  if (found < base.size()) {
    for (std::size_t i = 0; i < base.size(); ++i) {
      if (find(attributes, base[i].name, i)) continue;
      append_member(out, base[i].name);
      out += "null";
    }
  }
  out += '}';
  return patch;
}

}  // namespace smtpscope
