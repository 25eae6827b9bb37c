-- smtpscope schema 2: sessions observed by several sensors (milter, policy
-- server, log). Events of one SMTP connection from different sensors are
-- joined on client address, client port and time.

-- SMTP (HELO) or ESMTP (EHLO), from the policy server's protocol_name.
ALTER TABLE sessions ADD COLUMN protocol TEXT;
-- Sensors that contributed events, space-separated: 'milter policy'.
ALTER TABLE sessions ADD COLUMN sources TEXT NOT NULL DEFAULT '';
-- How events of the other sensors were matched to this session.
ALTER TABLE sessions ADD COLUMN join_method TEXT;
UPDATE sessions SET sources = 'milter' WHERE stream LIKE 'milter:%';
CREATE INDEX sessions_by_endpoint ON sessions (client_addr, client_port, connect_us);

-- The message size Postfix reported at END-OF-MESSAGE (policy server).
ALTER TABLE transactions ADD COLUMN message_bytes INTEGER;
