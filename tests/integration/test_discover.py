"""`smtpscope discover` on a real server's log read alone (the mchirico
blockbadip mail.log, tests/fixtures/logs/real, MIT): the sessions no
pattern names grouped by shape, ranked, each with an example timeline and a
printed patterns.yaml entry; the entry fed back with --patterns names its
group's sessions, which then leave the unnamed groups."""
import functools
import json
import os
import re
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(__file__))
import harness  # noqa: E402
from test_real_traffic import copy_fixture  # noqa: E402

PATTERNS = os.path.join(os.path.dirname(__file__), "..", "..", "conf", "patterns.yaml")


smtpscope = functools.partial(harness.smtpscope, check=True)


def discover(db, *args):
    return json.loads(smtpscope(db, "discover", "--format", "json", *args).stdout)


class DiscoverOnRealLog(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = harness.Workdir()
        cls.db = cls.work.join("smtpscope.db")
        smtpscope(cls.db, "ingest", "-q", "--year", "2018", copy_fixture(cls.work.path))
        cls.found = discover(cls.db, "--top", "50")

    @classmethod
    def tearDownClass(cls):
        cls.work.remove()

    def test_unnamed_sessions_are_grouped_and_ranked(self):
        found = self.found
        self.assertEqual(found["sessions"], 4089)
        self.assertGreater(found["unnamed_sessions"], 20)
        self.assertLess(found["unnamed_sessions"], found["sessions"] // 10)
        groups = found["groups"]
        self.assertGreaterEqual(len(groups), 3)
        sizes = [(g["sessions"], g["clients"]) for g in groups]
        self.assertEqual(sizes, sorted(sizes, reverse=True))
        self.assertLessEqual(sum(g["sessions"] for g in groups), found["unnamed_sessions"])
        for g in groups:
            self.assertGreaterEqual(g["sessions"], 2)  # --min-sessions 2 by default
            self.assertEqual(len(g["session_ids"]), g["sessions"])
            self.assertLessEqual(g["clients"], g["sessions"])
            self.assertRegex(g["example_stages"], g["stages_regex"])
        # Ordinary STARTTLS deliveries (EHLO twice by the log's counters),
        # for which no pattern exists, split by the pause before MAIL: 10-59 s
        # is one group, 60-599 s another.
        by_shape = {g["shape"]: g for g in groups}
        slow = by_shape.get("C H H +10-59s M R D E +2-9s Q")
        self.assertIsNotNone(slow, [g["shape"] for g in groups])
        self.assertIn("starttls=1", slow["commands"])
        self.assertIn("ehlo=N", slow["commands"])
        self.assertGreaterEqual(slow["sessions"], 10)
        self.assertGreater(slow["clients"], 5)
        self.assertIn("C H H +60-599s M R D E +2-9s Q", by_shape)

    def test_min_sessions_and_top_bound_the_list(self):
        self.assertEqual(len(discover(self.db, "--top", "2")["groups"]), 2)
        big = discover(self.db, "--min-sessions", "10", "--top", "50")["groups"]
        self.assertTrue(big)
        self.assertTrue(all(g["sessions"] >= 10 for g in big))

    def test_text_shows_an_example_timeline_and_an_entry(self):
        text = smtpscope(self.db, "discover", "--top", "1").stdout
        top = self.found["groups"][0]
        self.assertIn(f"1. {top['sessions']} sessions, {top['clients']} clients: {top['shape']}",
                      text)
        self.assertIn(f"session {top['example_session']}", text)
        self.assertIn("  log     connect from", text)  # the example's timeline
        self.assertIn("- name: 'unnamed-shape-1'", text)
        self.assertIn("stages: '^C H H", text)

    def test_a_printed_entry_fed_back_names_its_group(self):
        top = self.found["groups"][0]
        entry = top["pattern_yaml"].replace("unnamed-shape-1", "kept-shape")
        # Alone in a file: it loads with the product's loader.
        alone = self.work.join("alone.yaml")
        with open(alone, "w") as out:
            out.write("patterns:\n" + entry)
        smtpscope(self.db, "discover", "--patterns", alone)
        # Kept beside the shipped patterns, as an admin would.
        kept = self.work.join("patterns.yaml")
        with open(PATTERNS) as shipped, open(kept, "w") as out:
            out.write(shipped.read().rstrip("\n") + "\n\n" + entry)
        after = discover(self.db, "--patterns", kept, "--top", "50")
        self.assertEqual(after["unnamed_sessions"],
                         self.found["unnamed_sessions"] - top["sessions"])
        still_unnamed = {i for g in after["groups"] for i in g["session_ids"]}
        self.assertFalse(still_unnamed & set(top["session_ids"]))
        self.assertNotIn(top["shape"], [g["shape"] for g in after["groups"]])
        # And the sessions carry the new name (report reads the same analysis).
        report = json.loads(smtpscope(self.db, "report", "--client", top["example_client"],
                                      "--format", "json", "--patterns", kept).stdout)
        named = {s["id"]: s["patterns"] for s in report["session_details"]}
        self.assertEqual(named[top["example_session"]], ["kept-shape"])

    def test_errors_are_usage_errors(self):
        bad = self.work.join("bad.yaml")
        with open(bad, "w") as out:
            out.write("patterns:\n  - name: x\n    stages: '('\n")
        result = smtpscope(self.db, "discover", "--patterns", bad, check=False)
        self.assertEqual(result.returncode, 2)
        self.assertIn("bad.yaml", result.stderr)
        missing = smtpscope(self.work.join("none.db"), "discover", check=False)
        self.assertEqual(missing.returncode, 1)


if __name__ == "__main__":
    unittest.main()
