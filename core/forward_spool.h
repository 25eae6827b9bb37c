// The spool of a file that forwards to a fleet store (pg_forwarder.h): the
// event rows recorded locally since it started forwarding that the fleet
// store does not have yet. The Store bounds it (database.spool_max_events)
// so that a fleet store down for long fills no disk: beyond the bound new
// events are dropped and counted. Reads the local notes only (the last
// watermark the forwarder learned), so it may overstate by one batch.
#pragma once

#include <cstdint>

#include "result.h"
#include "sqlite.h"

namespace smtpscope {

// 0 when the file does not forward.
Result<std::int64_t> unforwarded_events(sqlite::Database& local);

}  // namespace smtpscope
