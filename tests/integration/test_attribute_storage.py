"""Attributes stored once (schema 9) show what they showed before: each real
log of tests/fixtures/logs/real/, read by `smtpscope ingest`, gives
`smtpscope sessions --format json` the same source, stage and attributes
for every event of every session as the build before schema 9 gave (its
digest recorded here from that build's output, commit df6c9b8). Regenerate
only on purpose: a change to what ingest records changes them too."""
import hashlib
import json
import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402

REAL = os.path.join(os.path.dirname(__file__), "..", "fixtures", "logs", "real")
# log file: (sessions, events, sha256 of the canonical dump)
BEFORE = {
    "mchirico-blockbadip-mail.log.gz":
        (4089, 12145, "4fe248f16819338cc72a20678a43e602a359a73479078c9b29582f31a07e65d8"),
    "FgForrest-Postfix-Deliverability-Analytics-mail.log.2.log.gz":
        (8096, 24003, "7a39244293918c226bbcc7116fcdc4210ee861e35de492f9b5ec35f61a43347a"),
}


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


if __name__ == "__main__":
    unittest.main()
