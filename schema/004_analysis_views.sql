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

-- One row per client: sessions, transactions and what named them.
CREATE VIEW client_summary AS
WITH per_session AS (
  SELECT s.id, s.client_addr, s.connect_us, a.pattern, a.fingerprint, a.helo_quirks,
         (SELECT count(*) FROM transactions t WHERE t.session_id = s.id) AS transactions,
         (SELECT count(*) FROM transactions t WHERE t.session_id = s.id
            AND t.outcome = 'aborted') AS aborted,
         (SELECT count(*) FROM transactions t WHERE t.session_id = s.id
            AND t.outcome = 'delivered') AS delivered
  FROM sessions s LEFT JOIN session_analysis a ON a.session_id = s.id)
SELECT client_addr,
       count(*) AS sessions,
       sum(transactions) AS transactions,
       sum(aborted) AS aborted,
       sum(delivered) AS delivered,
       round(1.0 * sum(aborted) / max(sum(transactions), 1), 3) AS abort_rate,
       (SELECT pattern FROM per_session p2 WHERE p2.client_addr = p.client_addr
          AND p2.pattern IS NOT NULL GROUP BY pattern ORDER BY count(*) DESC LIMIT 1)
         AS top_pattern,
       count(DISTINCT fingerprint) AS fingerprints,
       min(connect_us) AS first_us, max(connect_us) AS last_us
FROM per_session p GROUP BY client_addr;

-- How often each pattern names a session, and for how many clients.
CREATE VIEW abort_patterns AS
SELECT a.pattern, count(*) AS sessions, count(DISTINCT s.client_addr) AS clients,
       min(s.connect_us) AS first_us, max(s.connect_us) AS last_us
FROM session_analysis a JOIN sessions s ON s.id = a.session_id
WHERE a.pattern IS NOT NULL GROUP BY a.pattern ORDER BY sessions DESC;
