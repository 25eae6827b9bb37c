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

}  // namespace smtpscope::milter
