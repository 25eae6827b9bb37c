// Attributes stored once per session: the events of one session and sensor
// repeat most of their attributes (every policy request carries the client,
// HELO, TLS and SASL attributes again; every log line its client, program,
// pid and host), so an event row may hold only a JSON merge patch (RFC 7396,
// SQLite's json_patch) against an earlier event of the same session and
// sensor, its base, which holds its attributes whole: the attributes whose
// value differs, and null for the base's names the event lacks.
//
// Promises: json_patch(base row's attributes, patch) is the object
// attributes_to_json(attributes) writes, with the same names and values (the
// order of names may differ; a repeated name keeps its first value). `clock`
// is always written into the patch, even when the base has the same value:
// the session reader and session_timeline order log lines by the row's own
// `clock`. Pure functions, no state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "event.h"

namespace smtpscope {

// An event row stored whole, that later events of its session and sensor
// may be stored against.
struct AttributeBase {
  std::int64_t event_id = 0;
  std::vector<Attribute> attributes;  // distinct names, as stored
};

// The first occurrence of each name, in order: what attributes_to_json writes.
std::vector<Attribute> distinct_attributes(const std::vector<Attribute>& attributes);

// The patch of `attributes` against `base` (distinct names), or nullopt when
// it would not be at most half the size of the whole object: then the event
// is better stored whole (and becomes the next base).
std::optional<std::string> attributes_patch(const std::vector<Attribute>& attributes,
                                            const std::vector<Attribute>& base);

}  // namespace smtpscope
