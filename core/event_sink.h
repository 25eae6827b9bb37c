// Where sensors hand their Events. The Store is the real sink; tests use a
// vector. submit() must not block: false means the event was dropped.
#pragma once

#include "event.h"

namespace smtpscope {

class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual bool submit(Event event) = 0;
};

}  // namespace smtpscope
