// Binds the Recorder to libmilter: fills struct smfiDesc with callbacks that
// fetch the per-connection context (smfi_getpriv), call the Recorder and
// answer the MTA without ever blocking or rejecting mail. libmilter offers
// no user pointer, so the Recorder is installed once, before smfi_main(),
// and only read afterwards.
#pragma once

#include <libmilter/mfapi.h>

#include "recorder.h"

namespace smtpscope::milter {

void install_recorder(Recorder* recorder);
smfiDesc milter_description();

// Whether libmilter was told to stop (SIGTERM, SIGHUP or smfi_stop()). A
// stop signal that arrives while smfi_main() is starting closes the listen
// socket before the listener runs, and smfi_main() then returns MI_FAILURE
// although nothing failed; this tells the two apart.
bool stop_was_requested();

}  // namespace smtpscope::milter
