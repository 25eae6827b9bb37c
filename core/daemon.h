// Start-up helpers shared by the smtpscope daemons: store options from the
// configuration, the PID file, and blocking the stop signals so that every
// thread started afterwards inherits the mask (signals are then taken by
// one designated reader: libmilter's signal thread, or a signalfd).
#pragma once

#include <string>

#include "config.h"
#include "privileges.h"
#include "result.h"
#include "store.h"

namespace smtpscope {

StoreOptions store_options(const Config& config, const std::string& drop_source);

PrivilegeOptions privilege_options(const Config& config);

Status write_pid_file(const std::string& path);

// Blocks SIGTERM, SIGINT and SIGHUP in the calling thread; ignores SIGPIPE
// and SIGXFSZ (a write error is handled where it happens).
void block_stop_signals();

// Raises the soft limit on open files towards `wanted` (never beyond the
// hard limit) and returns the limit now in force.
std::size_t raise_open_file_limit(std::size_t wanted);

// Keeps glibc from returning freed heap to the kernel after every batch:
// events are allocated by the sensor thread and freed by the writer, and the
// repeated trim/grow cost TLB shootdowns across cores (measured, bench/).
// The Store gives it back once after a burst (store.h, release_after_bytes).
void tune_allocator();

}  // namespace smtpscope
