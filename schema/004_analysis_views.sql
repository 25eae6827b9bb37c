-- smtpscope schema 4: what `smtpscope clients`, `report` and `correlate`
-- concluded about each session, and views for sqlite3 users that show what
-- the report shows. session_analysis is refreshed by those commands.
CREATE TABLE session_analysis (
  session_id   INTEGER PRIMARY KEY REFERENCES sessions (id),
  stages       TEXT NOT NULL,   -- e.g. "C H M R +3s A M R D E Q"
  pattern      TEXT,            -- the pattern that names the session, NULL if none
  patterns     TEXT NOT NULL,   -- every matching pattern, space-separated
  fingerprint  TEXT NOT NULL,   -- short id; features in `smtpscope report`
  helo_quirks  TEXT NOT NULL,   -- space-separated
  analysed_us  INTEGER NOT NULL
);
CREATE INDEX session_analysis_by_pattern ON session_analysis (pattern);

-- Every event of every session in order, with the time since the connect
-- (log lines stamped in whole seconds are ordered by the end of their second).
CREATE VIEW session_timeline AS
SELECT s.id AS session_id, s.client_addr, s.client_port, e.source, e.stage,
       e.time_us, (e.time_us - s.connect_us) / 1e6 AS seconds_after_connect,
       e.argument, e.attributes, t.seq AS transaction_seq
FROM events e JOIN sessions s ON s.id = e.session_id
LEFT JOIN transactions t ON t.id = e.transaction_id
ORDER BY s.id, e.time_us + CASE WHEN e.source = 'log'
  AND json_extract(e.attributes, '$.clock') = 'second' THEN 999999 ELSE 0 END, e.id;

-- One row per client: sessions, transactions and what named them. One pass
-- over each table (a subquery per client made it quadratic on 1M sessions).
CREATE VIEW client_summary AS
WITH per_transaction AS (
  SELECT session_id, count(*) AS transactions, sum(outcome = 'aborted') AS aborted,
         sum(outcome = 'delivered') AS delivered
  FROM transactions GROUP BY session_id),
per_client AS (
  SELECT s.client_addr, count(*) AS sessions,
         coalesce(sum(t.transactions), 0) AS transactions,
         coalesce(sum(t.aborted), 0) AS aborted, coalesce(sum(t.delivered), 0) AS delivered,
         count(DISTINCT a.fingerprint) AS fingerprints,
         min(s.connect_us) AS first_us, max(s.connect_us) AS last_us
  FROM sessions s LEFT JOIN per_transaction t ON t.session_id = s.id
  LEFT JOIN session_analysis a ON a.session_id = s.id
  GROUP BY s.client_addr),
ranked_patterns AS (
  SELECT s.client_addr, a.pattern,
         row_number() OVER (PARTITION BY s.client_addr ORDER BY count(*) DESC, a.pattern) AS rank
  FROM session_analysis a JOIN sessions s ON s.id = a.session_id
  WHERE a.pattern IS NOT NULL GROUP BY s.client_addr, a.pattern)
SELECT p.client_addr, p.sessions, p.transactions, p.aborted, p.delivered,
       round(1.0 * p.aborted / max(p.transactions, 1), 3) AS abort_rate,
       r.pattern AS top_pattern, p.fingerprints, p.first_us, p.last_us
FROM per_client p LEFT JOIN ranked_patterns r ON r.client_addr = p.client_addr AND r.rank = 1;

-- How often each pattern names a session, and for how many clients.
CREATE VIEW abort_patterns AS
SELECT a.pattern, count(*) AS sessions, count(DISTINCT s.client_addr) AS clients,
       min(s.connect_us) AS first_us, max(s.connect_us) AS last_us
FROM session_analysis a JOIN sessions s ON s.id = a.session_id
WHERE a.pattern IS NOT NULL GROUP BY a.pattern ORDER BY sessions DESC;
