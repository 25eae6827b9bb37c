-- smtpscope schema 1: sessions, transactions, events, drops.
-- Times are microseconds since the Unix epoch (UTC). Client-supplied text is
-- stored as received (bounded in length by the sensors), never interpreted.

-- One SMTP connection as seen by Postfix's smtpd.
CREATE TABLE sessions (
  id            INTEGER PRIMARY KEY,
  stream        TEXT NOT NULL,     -- sensor connection that opened it, e.g. milter:4711:17
  client_addr   TEXT,              -- client IP address
  client_port   INTEGER,           -- client TCP port (NULL when unknown)
  client_name   TEXT,              -- Postfix's verified client name, or 'unknown'
  client_ptr    TEXT,              -- reverse (PTR) name
  server_addr   TEXT,              -- address of the smtpd listener
  server_port   INTEGER,
  connect_us    INTEGER NOT NULL,  -- first event of the session
  close_us      INTEGER,           -- NULL while the session is open
  helo          TEXT,              -- last HELO/EHLO argument seen
  helo_count    INTEGER NOT NULL DEFAULT 0,
  transactions  INTEGER NOT NULL DEFAULT 0,
  partial       INTEGER NOT NULL DEFAULT 0  -- 1 when its connect was not observed
);
CREATE INDEX sessions_by_client ON sessions (client_addr, connect_us);
CREATE INDEX sessions_by_time ON sessions (connect_us);
CREATE INDEX sessions_by_stream ON sessions (stream);

-- One mail transaction: MAIL FROM until end of message or abort.
CREATE TABLE transactions (
  id             INTEGER PRIMARY KEY,
  session_id     INTEGER NOT NULL REFERENCES sessions (id),
  seq            INTEGER NOT NULL,   -- 1-based within the session
  mail_from      TEXT,               -- as the client sent it, e.g. <a@example.com> or <>
  started_us     INTEGER NOT NULL,
  ended_us       INTEGER,
  rcpt_accepted  INTEGER NOT NULL DEFAULT 0,
  rcpt_rejected  INTEGER NOT NULL DEFAULT 0,  -- recipients Postfix refused
  data_us        INTEGER,            -- when DATA was accepted
  queue_id       TEXT,
  body_bytes     INTEGER,            -- body size the milter counted (headers excluded)
  outcome        TEXT NOT NULL DEFAULT 'open'
                 CHECK (outcome IN ('open', 'delivered', 'aborted')),
  UNIQUE (session_id, seq)
);

-- Every observed stage, in order. attributes is a JSON object of the stage's
-- extra data (macros, ESMTP arguments, rejected=1 ...): query it with
-- json_extract(attributes, '$.name').
CREATE TABLE events (
  id              INTEGER PRIMARY KEY,
  session_id      INTEGER NOT NULL REFERENCES sessions (id),
  transaction_id  INTEGER REFERENCES transactions (id),
  source          TEXT NOT NULL CHECK (source IN ('milter', 'policy', 'log')),
  stage           TEXT NOT NULL,
  time_us         INTEGER NOT NULL,
  argument        TEXT,
  attributes      TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX events_by_session ON events (session_id, time_us);

-- Events a sensor dropped because the write queue was full (fail-open).
CREATE TABLE drops (
  id        INTEGER PRIMARY KEY,
  time_us   INTEGER NOT NULL,
  source    TEXT NOT NULL,
  dropped   INTEGER NOT NULL   -- events dropped since the previous row
);
