"""Attributes stored once (schema 9) show what they showed before: each real
log of tests/fixtures/logs/real/, read by `smtpscope ingest`, gives
`smtpscope sessions --format json` the same source, stage and attributes
for every event of every session as the build before schema 9 gave (its
digest recorded here from that build's output: commit 4b3ec63, the last
before schema 9 with the log facts ingest records since). Regenerate only on
purpose: a change to what ingest records changes them too.
A lab run (a private Postfix with smtpscope-milter and smtpscope-policyd,
its log ingested) shows in `sessions --format json` and in the events view
each row made whole by RFC 7396 as done here, apart from SQLite."""
import hashlib
import json
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
import scenarios  # noqa: E402

REAL = os.path.join(os.path.dirname(__file__), "..", "fixtures", "logs", "real")
# log file: (sessions, events, sha256 of the canonical dump)
BEFORE = {
    "mchirico-blockbadip-mail.log.gz":
        (4089, 15317, "67feb4f841195ddd082399c902fdb7f6c6eb2eb594bb3273356d48a4b2924dc6"),
    "FgForrest-Postfix-Deliverability-Analytics-mail.log.2.log.gz":
        (8096, 24003, "078c211ee44c08693cba09018a7f405dcb86bd878c2fc990133e3b09841e80b2"),
}


def merge_patch(target, patch):
    """RFC 7396 for objects of strings: null removes a name."""
    merged = dict(target)
    for name, value in patch.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def whole_rows(db):
    """Every event row's attributes made whole here, by row id."""
    sets = dict(harness.query(db, "SELECT id, attributes FROM attribute_sets"))
    rows = harness.query(db, "SELECT id, attributes, set_id, base_id FROM event_rows")
    stored = {row_id: attributes for row_id, attributes, _, _ in rows}
    whole = {}
    for row_id, attributes, set_id, base_id in rows:
        base = sets[set_id] if set_id is not None else stored[base_id] if base_id is not None \
            else "{}"
        whole[row_id] = merge_patch(json.loads(base), json.loads(attributes))
    return whole


def canonical_dump(sessions_json):
    """One line per event: session ordinal, source, stage, attributes."""
    lines = []
    for i, session in enumerate(json.loads(sessions_json)["sessions"]):
        for event in session["events"]:
            lines.append(json.dumps([i, event["source"], event["stage"], event["attributes"]],
                                    sort_keys=True))
    return len(lines), hashlib.sha256("\n".join(lines).encode()).hexdigest()


class AttributeStorage(unittest.TestCase):
    def setUp(self):
        self.work = harness.Workdir("smtpscope-attributes-")
        self.addCleanup(self.work.remove)

    def test_real_logs_show_the_attributes_they_showed_before(self):
        for name, (sessions, events, digest) in BEFORE.items():
            with self.subTest(log=name):
                log = self.work.join(name)
                shutil.copy(os.path.join(REAL, name), log)
                db = self.work.join(name + ".db")
                harness.smtpscope(db, "ingest", "-q", "--year", "2018", log, check=True)
                shown = harness.smtpscope(db, "sessions", "--format", "json", "--limit",
                                          "1000000", check=True).stdout
                self.assertEqual(len(json.loads(shown)["sessions"]), sessions)
                self.assertEqual(canonical_dump(shown), (events, digest))
                # ... from rows that hold patches against shared sets.
                (patched,) = harness.query(db, "SELECT count(*) FROM event_rows"
                                               " WHERE set_id IS NOT NULL")[0]
                self.assertGreater(patched, events // 2)

    def test_a_lab_run_reads_back_whole(self):
        db = self.work.join("lab.db")
        milter_socket = self.work.join("milter.sock")
        policy_socket = self.work.join("policy.sock")
        milter = harness.milter_daemon(self.work, db, milter_socket).start()
        policy = harness.policy_daemon(self.work, db, [f"unix:{policy_socket}"]).start()
        postfix = harness.PostfixInstance(self.work, milter_socket=f"unix:{milter_socket}",
                                          policy_service=f"unix:{policy_socket}").start()
        try:
            clients = ["127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.34"]
            scenarios.ordinary_sender(postfix.port, clients[0])
            scenarios.ordinary_sender(postfix.port, clients[1])
            scenarios.rejected_recipient(postfix.port, clients[2])
            scenarios.helo_client(postfix.port, clients[3])
            for client in clients:
                postfix.wait_for_log(f"disconnect from unknown[{client}]")
            harness.wait_for_closed(db, clients)
        finally:
            postfix.stop()
            milter.stop()
            policy.stop()
        harness.smtpscope(db, "ingest", "-q", postfix.maillog, check=True)
        whole = whole_rows(db)
        view = {row_id: json.loads(attributes)
                for row_id, attributes in harness.query(db, "SELECT id, attributes FROM events")}
        self.assertEqual(view, whole)
        shown = json.loads(harness.smtpscope(db, "sessions", "--format", "json", "--limit",
                                             "1000", check=True).stdout)
        ids = harness.query(db, "SELECT id FROM event_rows ORDER BY session_id, id")
        shown_attributes = sorted(json.dumps(e["attributes"], sort_keys=True)
                                  for s in shown["sessions"] for e in s["events"])
        self.assertEqual(shown_attributes,
                         sorted(json.dumps(whole[row_id], sort_keys=True) for (row_id,) in ids))
        sources = {source for (source,) in harness.query(db, "SELECT DISTINCT source FROM"
                                                             " event_rows WHERE set_id IS NOT NULL"
                                                             " OR base_id IS NOT NULL")}
        self.assertEqual(sources, {"milter", "policy", "log"})


if __name__ == "__main__":
    unittest.main()
