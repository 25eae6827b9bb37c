"""PostgreSQL groundwork (issue 16): the private test server of pg_server.py,
and smtpscope's libpq connection (core/pg_connection) against it: a good
connection runs queries over TCP and the unix socket; a wrong password and an
unreachable server give a clear error naming the URL without the password.
The C++ side is tests/unit/pg_connection_test.cpp, run here with the server's
URLs in its environment; no password may appear in its output.
"""
import os
import subprocess
import unittest

import harness
import pg_server


def pg_connection_test():
    path = os.path.join(harness.BUILD_DIR, "tests", "unit", "pg_connection_test")
    if not os.path.exists(path):
        raise FileNotFoundError(f"pg_connection_test not built under {harness.BUILD_DIR}")
    return os.path.abspath(path)


@unittest.skipIf(pg_server.available(), pg_server.available())
class PostgresServerTest(unittest.TestCase):
    def test_two_servers_run_side_by_side_as_nobody_and_stop_by_pid(self):
        with pg_server.PgServer() as one, pg_server.PgServer() as two:
            self.assertNotEqual(one.port, two.port)
            self.assertNotEqual(one.dir, two.dir)
            for server in (one, two):
                with open(f"/proc/{server.pid}/status") as status:
                    uid = next(line for line in status if line.startswith("Uid:")).split()[1]
                self.assertEqual(int(uid), server._uid)
                self.assertTrue(os.path.exists(os.path.join(server.socket_dir,
                                                            f".s.PGSQL.{server.port}")))
                self.assertEqual(server.psql("SHOW port").strip(), str(server.port))
                # Only password (SCRAM) authentication, for every connection.
                hba = server.psql("SELECT DISTINCT auth_method FROM pg_hba_file_rules")
                self.assertEqual(hba.split(), ["scram-sha-256"])
            pid = one.pid
            one.stop()
            self.assertTrue(pg_server._process_gone(pid))
            self.assertEqual(two.psql("SELECT 1").strip(), "1")  # the other one still runs
            one.start()  # a restart keeps the data, the role and the port
            self.assertEqual(one.psql("SELECT count(*) FROM pg_roles WHERE rolname = "
                                      f"'{pg_server.ROLE}'").strip(), "1")
            dirs = (one.dir, two.dir)
        for directory in dirs:
            self.assertFalse(os.path.exists(directory))


@unittest.skipIf(pg_server.available(), pg_server.available())
class PostgresConnectTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pg = pg_server.PgServer()
        try:
            cls.pg.start()
        except BaseException:
            cls.pg.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()

    def run_connection_test(self, extra_env=None):
        env = dict(os.environ, SMTPSCOPE_TEST_PG_URL=self.pg.url,
                   SMTPSCOPE_TEST_PG_SOCKET_URL=self.pg.socket_url,
                   SMTPSCOPE_TEST_PG_PASSWORD_FILE=self.pg.password_file,
                   **(extra_env or {}))
        env.pop("PGPASSWORD", None)
        env.pop("SMTPSCOPE_DB_PASSWORD", None)
        return subprocess.run([pg_connection_test()], env=env, capture_output=True, text=True,
                              timeout=120)

    def test_connection_queries_and_errors(self):
        done = self.run_connection_test()
        output = done.stdout + done.stderr
        self.assertEqual(done.returncode, 0, output)
        self.assertIn("[  PASSED  ] 7 tests.", done.stdout)
        self.assertNotIn("SKIPPED", done.stdout)
        # The errors the tests provoked were printed; none holds a password.
        self.assertIn("password authentication failed", output)
        self.assertIn("Connection refused", output)
        self.assertIn(f"connect to postgresql://{pg_server.ROLE}@127.0.0.1:", output)
        self.assertNotIn(self.pg.password, output)
        self.assertNotIn(self.pg.superuser_password, output)

    def test_skips_without_a_server(self):
        done = subprocess.run([pg_connection_test()], capture_output=True, text=True,
                              timeout=60, env={k: v for k, v in os.environ.items()
                                               if not k.startswith("SMTPSCOPE_TEST_PG_")})
        self.assertEqual(done.returncode, 0, done.stdout + done.stderr)
        self.assertIn("[  SKIPPED ] 7 tests", done.stdout)


if __name__ == "__main__":
    unittest.main()
