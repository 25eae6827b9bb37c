-- smtpscope schema 8: each session analysed once, when it ends, and the
-- per-client counts every view reads. session_analysis holds one row per
-- analysed session; triggers keep client_day_shapes (sessions per client,
-- host, UTC day, fingerprint, patterns and HELO quirks) equal to a GROUP BY
-- over it, so a session analysed twice counts once and a pruned one not at
-- all. The old session_analysis (schema 4) was a cache the commands
-- refilled; it is rebuilt here and refilled by `smtpscope analyse` (or the
-- first command that needs it).
DROP VIEW IF EXISTS client_summary;
DROP VIEW IF EXISTS abort_patterns;
DROP TABLE IF EXISTS session_analysis;

CREATE TABLE session_analysis (
  session_id    INTEGER PRIMARY KEY,  -- sessions.id
  client_addr   TEXT NOT NULL,
  host          TEXT NOT NULL,        -- '' when no log line named the server
  connect_us    INTEGER NOT NULL,
  stages        TEXT NOT NULL,        -- e.g. "C H M R +3s A M R D E Q"
  pattern       TEXT,                 -- the pattern that names the session, NULL if none
  patterns      TEXT NOT NULL,        -- every matching pattern, space-separated
  fingerprint   TEXT NOT NULL,        -- short id; features in table fingerprints
  helo_quirks   TEXT NOT NULL,        -- space-separated
  transactions  INTEGER NOT NULL,
  aborted       INTEGER NOT NULL,
  delivered     INTEGER NOT NULL,
  local         INTEGER NOT NULL,     -- 1: a content filter's reinjection from loopback
  analysed_us   INTEGER NOT NULL
);
CREATE INDEX session_analysis_by_client ON session_analysis (client_addr, connect_us);
CREATE INDEX session_analysis_by_time ON session_analysis (connect_us);
CREATE INDEX session_analysis_local ON session_analysis (client_addr) WHERE local = 1;

-- Each client's timing as of its newest analysed session (from the 200
-- sessions before it at most): regular interval and largest burst.
CREATE TABLE client_timing (
  client_addr     TEXT PRIMARY KEY,
  last_connect_us INTEGER NOT NULL,
  sessions        INTEGER NOT NULL,
  mean_interval_s REAL,
  regular_every_s REAL,
  burst           INTEGER NOT NULL
) WITHOUT ROWID;

-- What a fingerprint id stands for (the features of the last session seen with it).
CREATE TABLE fingerprints (
  id       TEXT PRIMARY KEY,
  features TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE client_day_shapes (
  client_addr  TEXT NOT NULL,
  host         TEXT NOT NULL,
  day          INTEGER NOT NULL,      -- connect_us / 86,400,000,000 (UTC days since 1970)
  fingerprint  TEXT NOT NULL,
  patterns     TEXT NOT NULL,
  helo_quirks  TEXT NOT NULL,
  sessions     INTEGER NOT NULL,
  transactions INTEGER NOT NULL,
  aborted      INTEGER NOT NULL,
  delivered    INTEGER NOT NULL,
  PRIMARY KEY (client_addr, host, day, fingerprint, patterns, helo_quirks)
) WITHOUT ROWID;
CREATE INDEX client_day_shapes_by_day ON client_day_shapes (day);

CREATE TRIGGER session_analysis_counted AFTER INSERT ON session_analysis BEGIN
  INSERT INTO client_day_shapes VALUES (NEW.client_addr, NEW.host, NEW.connect_us / 86400000000,
    NEW.fingerprint, NEW.patterns, NEW.helo_quirks, 1, NEW.transactions, NEW.aborted, NEW.delivered)
  ON CONFLICT (client_addr, host, day, fingerprint, patterns, helo_quirks) DO UPDATE SET
    sessions = sessions + 1, transactions = transactions + excluded.transactions,
    aborted = aborted + excluded.aborted, delivered = delivered + excluded.delivered;
END;

CREATE TRIGGER session_analysis_uncounted AFTER DELETE ON session_analysis BEGIN
  UPDATE client_day_shapes SET sessions = sessions - 1,
    transactions = transactions - OLD.transactions, aborted = aborted - OLD.aborted,
    delivered = delivered - OLD.delivered
  WHERE client_addr = OLD.client_addr AND host = OLD.host AND day = OLD.connect_us / 86400000000
    AND fingerprint = OLD.fingerprint AND patterns = OLD.patterns AND helo_quirks = OLD.helo_quirks;
  DELETE FROM client_day_shapes
  WHERE client_addr = OLD.client_addr AND host = OLD.host AND day = OLD.connect_us / 86400000000
    AND fingerprint = OLD.fingerprint AND patterns = OLD.patterns AND helo_quirks = OLD.helo_quirks
    AND sessions <= 0;
END;

-- An analysis is replaced by DELETE then INSERT (the two triggers above),
-- never updated in place.

-- What the stored analysis was made with: analysis_version (of the
-- program), patterns_digest (of the patterns file), event_watermark and
-- session_watermark (every event and session up to these ids has been
-- looked at), analyse_cursor (where an interrupted `smtpscope analyse`
-- resumes).
CREATE TABLE analysis_state (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- Every session needs analysing once: those with events past
-- event_watermark, or a row past session_watermark.
INSERT INTO analysis_state VALUES ('event_watermark', '0');
INSERT INTO analysis_state VALUES ('session_watermark', '0');

-- Sessions a daemon's pass found still open (it analyses ended ones only);
-- a command that shows open sessions analyses these too.
CREATE TABLE analysis_open (session_id INTEGER PRIMARY KEY);

-- One row per client: sessions, transactions and what named them, from the
-- stored analysis.
CREATE VIEW client_summary AS
WITH per_client AS (
  SELECT client_addr, sum(sessions) AS sessions, sum(transactions) AS transactions,
         sum(aborted) AS aborted, sum(delivered) AS delivered,
         count(DISTINCT fingerprint) AS fingerprints
  FROM client_day_shapes GROUP BY client_addr),
ranked_patterns AS (
  SELECT client_addr, pattern,
         row_number() OVER (PARTITION BY client_addr ORDER BY count(*) DESC, pattern) AS rank
  FROM session_analysis WHERE pattern IS NOT NULL GROUP BY client_addr, pattern),
times AS (
  SELECT client_addr, min(connect_us) AS first_us, max(connect_us) AS last_us
  FROM session_analysis GROUP BY client_addr)
SELECT p.client_addr, p.sessions, p.transactions, p.aborted, p.delivered,
       round(1.0 * p.aborted / max(p.transactions, 1), 3) AS abort_rate,
       r.pattern AS top_pattern, p.fingerprints, t.first_us, t.last_us
FROM per_client p JOIN times t ON t.client_addr = p.client_addr
LEFT JOIN ranked_patterns r ON r.client_addr = p.client_addr AND r.rank = 1;

-- How often each pattern names a session, and for how many clients.
CREATE VIEW abort_patterns AS
SELECT pattern, count(*) AS sessions, count(DISTINCT client_addr) AS clients,
       min(connect_us) AS first_us, max(connect_us) AS last_us
FROM session_analysis WHERE pattern IS NOT NULL GROUP BY pattern ORDER BY sessions DESC;
