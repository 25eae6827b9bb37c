-- smtpscope schema 10: forwarding to a fleet store (PostgreSQL, see
-- core/pg_forwarder.h). Local bookkeeping only: PostgreSQL has no copy of
-- these two tables (it has `origins` instead).
--
-- forward_state holds, once this file forwards: 'origin' (its number in the
-- fleet store: the ids of its rows there are origin * 2^40 + the local id),
-- 'instance' (a random name the fleet store knows this file by), and the
-- local copy of the fleet store's watermarks (the fleet store's own are
-- the ones that count).
--
-- Sessions, transactions, events, attribute sets, drops and remote events
-- are forwarded by id: every change of a session or transaction comes with
-- a new event row of that session. What the analysis writes (a session's
-- analysis, a client's timing, a fingerprint) is noted in forward_queue by
-- the triggers below, only while the file forwards (an 'origin' row exists):
-- a one-host database pays one empty lookup per analysed session. A session's
-- analysis deleted here (prune) is not deleted from the fleet store.
CREATE TABLE forward_state (
  key    TEXT PRIMARY KEY,
  value  TEXT NOT NULL
);

CREATE TABLE forward_queue (
  seq     INTEGER PRIMARY KEY,
  kind    TEXT NOT NULL,   -- 'analysis' (session_analysis.session_id), 'timing' (client_timing.client_addr), 'fingerprint' (fingerprints.id)
  row_id  INTEGER,
  key     TEXT
);

CREATE TRIGGER forward_analysis AFTER INSERT ON session_analysis
WHEN EXISTS (SELECT 1 FROM forward_state WHERE key = 'origin')
BEGIN
  INSERT INTO forward_queue (kind, row_id) VALUES ('analysis', NEW.session_id);
END;

CREATE TRIGGER forward_timing_insert AFTER INSERT ON client_timing
WHEN EXISTS (SELECT 1 FROM forward_state WHERE key = 'origin')
BEGIN
  INSERT INTO forward_queue (kind, key) VALUES ('timing', NEW.client_addr);
END;

CREATE TRIGGER forward_timing_update AFTER UPDATE ON client_timing
WHEN EXISTS (SELECT 1 FROM forward_state WHERE key = 'origin')
BEGIN
  INSERT INTO forward_queue (kind, key) VALUES ('timing', NEW.client_addr);
END;

CREATE TRIGGER forward_fingerprint AFTER INSERT ON fingerprints
WHEN EXISTS (SELECT 1 FROM forward_state WHERE key = 'origin')
BEGIN
  INSERT INTO forward_queue (kind, key) VALUES ('fingerprint', NEW.id);
END;
