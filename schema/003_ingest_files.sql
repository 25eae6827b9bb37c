-- smtpscope schema 3: log files read by `smtpscope ingest`, so that reading
-- a file again adds nothing and an interrupted read resumes. A file is known
-- by its first line (which stays when the file is renamed by rotation or
-- grows); `offset` counts the (uncompressed) bytes whose lines are committed
-- in the same transaction as their events.
CREATE TABLE ingest_files (
  id          INTEGER PRIMARY KEY,
  fingerprint TEXT NOT NULL UNIQUE,
  path        TEXT NOT NULL,
  offset      INTEGER NOT NULL,
  lines       INTEGER NOT NULL DEFAULT 0,
  parsed      INTEGER NOT NULL DEFAULT 0,
  skipped     INTEGER NOT NULL DEFAULT 0,
  malformed   INTEGER NOT NULL DEFAULT 0,
  updated_us  INTEGER NOT NULL
);
