-- smtpscope schema 5: what Postfix's smtp client logged about remote
-- servers (Postfix as a client): lost connections and timeouts while
-- sending a command, refusals, replies, connect failures, and the status of
-- each delivery, including address verification probes.
CREATE TABLE remote_events (
  id           INTEGER PRIMARY KEY,
  time_us      INTEGER NOT NULL,
  server_name  TEXT,
  server_addr  TEXT NOT NULL,
  server_port  INTEGER,
  kind         TEXT NOT NULL,   -- lost, timeout, refused, reply, connect, status
  state        TEXT,            -- the command it happened at, e.g. RCPT TO
  status       TEXT,            -- sent, deferred, bounced, deliverable, undeliverable
  queue_id     TEXT,
  recipient    TEXT,
  dsn          TEXT,
  probe        INTEGER NOT NULL DEFAULT 0,  -- an address verification probe
  reason       TEXT
);
CREATE INDEX remote_events_by_server ON remote_events (server_addr, time_us);
