-- smtpscope schema 9: attributes that repeat within a session stored once
-- (measured in bench/README.md, "Bytes per session"). Every policy request
-- carries the client, HELO, TLS and SASL attributes again, every log line
-- its client, program, pid and host. The rows are now kept in event_rows,
-- where a row whose base_id is set holds only a JSON merge patch (RFC 7396)
-- against that row, an earlier event of the same session and sensor stored
-- whole: the attributes whose value differs, and null for those the event
-- lacks (`clock` is always in the row itself). Rows with base_id NULL, and
-- every row written before this version, hold their attributes whole.
--
-- `events` becomes a view with the same columns and rows as before, each
-- with its attributes whole, so queries written against it (and the views
-- of schema 4, which name it) read the same. Inserting into it and
-- deleting from it still work, row by row (a trigger); the programs write
-- event_rows directly. Delete a session's rows together: a patch needs its
-- base.
--
-- As in schema 6, the rename leaves the views that name `events` alone
-- (legacy_alter_table), so they read the new view.
PRAGMA legacy_alter_table = ON;

ALTER TABLE events RENAME TO event_rows;
ALTER TABLE event_rows ADD COLUMN base_id INTEGER;  -- the row this one's attributes patch

CREATE VIEW events AS
SELECT r.id, r.session_id, r.transaction_id, r.source, r.stage, r.time_us, r.argument,
       CASE WHEN r.base_id IS NULL THEN r.attributes
            ELSE json_patch(b.attributes, r.attributes) END AS attributes
FROM event_rows r LEFT JOIN event_rows b ON b.id = r.base_id;

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
