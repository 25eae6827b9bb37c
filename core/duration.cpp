#include "duration.h"

#include <charconv>
#include <string>

namespace smtpscope {

Result<std::int64_t> parse_duration_us(std::string_view text) {
  std::int64_t amount = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), amount);
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  const std::string bad = "bad duration \"" + std::string(text) + "\" (use e.g. 90s, 15m, 24h, 7d)";
  if (ec != std::errc() || amount < 0) return Status::error(bad);
  std::int64_t seconds_per_unit = 0;
  if (unit.empty() || unit == "s") {
    seconds_per_unit = 1;
  } else if (unit == "m") {
    seconds_per_unit = 60;
  } else if (unit == "h") {
    seconds_per_unit = 3600;
  } else if (unit == "d") {
    seconds_per_unit = 86400;
  } else {
    return Status::error(bad);
  }
  if (amount > INT64_MAX / 1000000 / seconds_per_unit) return Status::error(bad);
  return amount * seconds_per_unit * 1000000;
}

}  // namespace smtpscope
