// Parses human durations for --since: "90s", "15m", "24h", "7d" (a plain
// number means seconds). Returns microseconds.
#pragma once

#include <cstdint>
#include <string_view>

#include "result.h"

namespace smtpscope {

Result<std::int64_t> parse_duration_us(std::string_view text);

}  // namespace smtpscope
