// Attributes stored once: the events of one sensor and stage repeat most of
// their attributes, within a session (every policy request carries the
// client, HELO, TLS and SASL attributes again; every log line its client,
// program, pid and host) and from session to session (the server's name,
// address, port and version in every milter connect). An event row holds a
// JSON merge patch (RFC 7396, SQLite's json_patch) against an attribute set
// (attribute_sets row) shared by the rows of its sensor and stage, or
// against a row of its session stored whole: the attributes whose value
// differs, and null for the names it lacks.
//
// Promises: json_patch(base, patch) is the object attributes_to_json writes,
// with the same names and values (the order of names may differ; a repeated
// name keeps its first value). Pure functions, no state.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "event.h"

namespace smtpscope {

// A stored attribute set, or a row stored whole, that rows may be patches
// against.
struct AttributeBase {
  std::int64_t id = 0;  // an attribute_sets or event_rows id
  std::vector<Attribute> attributes;  // distinct names, as stored
};

// The first occurrence of each name, in order: what attributes_to_json writes.
std::vector<Attribute> distinct_attributes(const std::vector<Attribute>& attributes);

struct AttributePatch {
  std::string text;              // the JSON merge patch
  std::size_t whole_bytes = 0;   // about the size of the whole object (escapes aside)
};

// The attributes of `attributes` (distinct names) that `other` has with the
// same value: what repeats from one event of a kind to the next; and about
// the size of their JSON object.
std::vector<Attribute> common_attributes(const std::vector<Attribute>& attributes,
                                         const std::vector<Attribute>& other);
std::size_t json_bytes(const std::vector<Attribute>& attributes);

// The patch of `attributes` against `base` (distinct names).
AttributePatch attributes_patch(const std::vector<Attribute>& attributes,
                                const std::vector<Attribute>& base);

}  // namespace smtpscope
