-- smtpscope schema 9: attributes that repeat stored once (measured in
-- bench/README.md, "Bytes per session"). Every policy request carries the
-- client, HELO, TLS and SASL attributes again, every log line its client,
-- program, pid and host, every milter connect the server's name, address
-- and version. The rows are now kept in event_rows, where a row whose
-- set_id is set holds only a JSON merge patch (RFC 7396) against that
-- attribute set, shared by the events of one sensor and stage, and a row
-- whose base_id is set one against that row, an earlier one of the same
-- session and sensor stored whole: the attributes whose value differs, and
-- null for the names the event lacks. Rows with neither, and every row
-- written before this version, hold their attributes whole.
--
-- `events` becomes a view with the same columns and rows as before, each
-- with its attributes whole, so queries written against it (and the views
-- of schema 4, which name it) read the same. Inserting into it and
-- deleting from it still work, row by row (triggers); the programs write
-- and prune event_rows directly. Delete a session's rows together (a
-- patch may need a whole row of its session). Attribute sets are shared by sessions and
-- stay when sessions are pruned (one per shape of event, not per session).
--
-- As in schema 6, the rename leaves the views that name `events` alone
-- (legacy_alter_table), so they read the new view.
PRAGMA legacy_alter_table = ON;

CREATE TABLE attribute_sets (
  id          INTEGER PRIMARY KEY,
  attributes  TEXT NOT NULL   -- a JSON object, as events.attributes
);

ALTER TABLE events RENAME TO event_rows;
ALTER TABLE event_rows ADD COLUMN set_id INTEGER REFERENCES attribute_sets (id);
ALTER TABLE event_rows ADD COLUMN base_id INTEGER;  -- a whole row of the same session

-- A session's events are found by session_id; their order is an expression
-- (log lines stamped in whole seconds go last in their second) that no
-- index serves, so time_us in the index only cost ~8 bytes a row.
DROP INDEX events_by_session;
CREATE INDEX events_by_session ON event_rows (session_id);

CREATE VIEW events AS
SELECT r.id, r.session_id, r.transaction_id, r.source, r.stage, r.time_us, r.argument,
       CASE WHEN r.set_id IS NOT NULL THEN json_patch(a.attributes, r.attributes)
            WHEN r.base_id IS NOT NULL THEN json_patch(b.attributes, r.attributes)
            ELSE r.attributes END AS attributes
FROM event_rows r LEFT JOIN attribute_sets a ON a.id = r.set_id
LEFT JOIN event_rows b ON b.id = r.base_id;

CREATE TRIGGER events_insert INSTEAD OF INSERT ON events
BEGIN
  INSERT INTO event_rows (id, session_id, transaction_id, source, stage, time_us, argument,
                          attributes)
  VALUES (NEW.id, NEW.session_id, NEW.transaction_id, NEW.source, NEW.stage, NEW.time_us,
          NEW.argument, coalesce(NEW.attributes, '{}'));
END;

CREATE TRIGGER events_delete INSTEAD OF DELETE ON events
BEGIN
  DELETE FROM event_rows WHERE id = OLD.id;
END;

PRAGMA legacy_alter_table = OFF;
