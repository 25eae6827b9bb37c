// Per-connection milter state, from negotiation to close. It owns the state
// of the current mail transaction and holds the configuration snapshot taken
// when the connection started, so a reload never changes a session midway.
// libmilter may run one connection's callbacks on different threads, one at
// a time, so this needs no locking; it must never be shared between
// connections (it lives in smfi_setpriv).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "config.h"

namespace smtpscope::milter {

struct TransactionContext {
  std::size_t recipients_recorded = 0;
  std::size_t recipients_not_recorded = 0;
  std::size_t headers_recorded = 0;
  std::uint64_t body_bytes = 0;
};

struct ConnectionContext {
  std::shared_ptr<const Config> config;
  std::string stream;
  unsigned long no_reply_steps = 0;  // SMFIP_NR_* bits the MTA granted
  bool connected = false;  // the MTA sent the SMTP connect event
  std::uint32_t transaction_count = 0;
  bool in_transaction = false;
  TransactionContext transaction;
};

}  // namespace smtpscope::milter
