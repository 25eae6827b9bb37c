-- smtpscope schema 7: the mail server a session was on, and journal
-- cursors. A central syslog file holds several servers' logs; their sessions are kept apart by the
-- syslog host field and carry it here (the journal's _HOSTNAME likewise).
-- NULL where no sensor named it (sessions recorded before this version,
-- and the milter's and policy server's own sessions until a log line
-- joins them).
ALTER TABLE sessions ADD COLUMN host TEXT;
CREATE INDEX sessions_by_host ON sessions (host, connect_us) WHERE host IS NOT NULL;

-- Where `smtpscope ingest --journal` stopped: the journal cursor of the last
-- entry committed (ingest_files' offset is for files; a journal has none).
ALTER TABLE ingest_files ADD COLUMN cursor TEXT;
