// Groups the sessions no pattern names by their shape, so an admin sees what
// real traffic does that nobody wrote a pattern for, and can keep a pattern
// for it. A session's shape key is:
//   - its stage string with each pause ("+10s") put into a bucket (2-9 s,
//     10-59 s, 60-599 s, 600 s and more) and runs of identical transactions
//     (a unit from one MAIL to the next) compressed to one unit repeated;
//   - the log's command signature: each disconnect counter (but the total
//     "commands") as the command, how many (1 or N) and whether all, none or
//     some of them succeeded;
//   - the HELO class: no HELO, or its quirks (helo_quirks.h), or "plain";
//   - the client's timing (client_timing.h) where known: regular, burst.
// Groups are ranked by sessions, then distinct clients, then key. Each group
// yields a patterns.yaml entry (pattern_entry) whose anchored RE2 `stages`
// regex matches every member's stage string, with `when:` conditions every
// member shares; it loads with parse_patterns and matches the members.
// Pure; linear in the members' stage strings (plus sorting).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "session_facts.h"

namespace smtpscope::analysis {

struct ShapeMember {
  const SessionFacts* facts = nullptr;  // not owned; outlives the grouping
  std::string client;
  std::string timing;  // "regular", "burst" or "" (unknown or irregular)
};

struct ShapeGroup {
  std::string shape;     // the normalised stage string, e.g. "C H (M R D E)+ Q"
  std::string commands;  // the command signature, e.g. "ehlo=1 mail=0/1 quit=1"
  std::string helo;      // the HELO class
  std::string timing;
  std::string stages_regex;          // anchored RE2, matches every member's stages
  std::vector<std::size_t> members;  // indexes into the input, in input order
  std::size_t clients = 0;           // distinct clients among the members
};

// The shape part of the key: gaps bucketed, repeated transactions compressed.
std::string normalised_shape(const std::string& stages);
// The anchored regex that matches every stage string of that shape.
std::string shape_regex(const std::string& stages);
// The command signature of the log's disconnect counters ("" without a log).
std::string command_signature(const SessionFacts& facts);

// Groups of at least `min_sessions` members, largest first.
std::vector<ShapeGroup> group_shapes(const std::vector<ShapeMember>& members,
                                     std::size_t min_sessions);

// A patterns.yaml list entry ("  - name: NAME ...") for the group, ready to
// paste under `patterns:`; `name` must be unique in the file it joins.
std::string pattern_entry(const ShapeGroup& group, const std::vector<ShapeMember>& members,
                          const std::string& name);

}  // namespace smtpscope::analysis
