"""Rewrites a BSD-syslog mail.log (bench/gen_maillog.py's) in the other
timestamp forms smtpscope ingest reads, and as journal export format for
systemd-journal-remote, for bench/ingest_bench.sh's per-format rows.
Usage: maillog_formats.py MAIL.LOG YEAR OUTDIR
Writes OUTDIR/{year_first,rfc3339,short_precise}.log and OUTDIR/journal.export."""
import calendar
import os
import re
import sys

MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
LINE = re.compile(r"^(\w{3}) +(\d+) (\d\d):(\d\d):(\d\d) (\S+) ([^\[:]+)\[(\d+)\]: (.*)$")


def main(source, year, outdir):
    year = int(year)
    outs = {name: open(os.path.join(outdir, name + ".log"), "w")
            for name in ("year_first", "rfc3339", "short_precise")}
    export = open(os.path.join(outdir, "journal.export"), "w")
    with open(source) as f:
        for n, line in enumerate(f):
            m = LINE.match(line.rstrip("\n"))
            if not m:
                continue
            mon, day, h, mi, s, host, ident, pid, msg = m.groups()
            month, day = MONTHS.index(mon) + 1, int(day)
            micros = n % 1_000_000
            rest = f"{host} {ident}[{pid}]: {msg}\n"
            outs["year_first"].write(f"{year} {mon} {day:2d} {h}:{mi}:{s}.{micros // 1000:03d} {rest}")
            outs["rfc3339"].write(f"{year}-{month:02d}-{day:02d}T{h}:{mi}:{s}.{micros:06d}+00:00 {rest}")
            outs["short_precise"].write(f"{mon} {day:2d} {h}:{mi}:{s}.{micros:06d} {rest}")
            stamp = calendar.timegm((year, month, day, int(h), int(mi), int(s), 0, 0, 0))
            export.write(f"__REALTIME_TIMESTAMP={stamp * 1_000_000 + micros}\n"
                         f"__MONOTONIC_TIMESTAMP={n + 1}\n"
                         "_BOOT_ID=0123456789abcdef0123456789abcdef\n"
                         "_MACHINE_ID=fedcba9876543210fedcba9876543210\n"
                         f"_HOSTNAME={host}\nSYSLOG_IDENTIFIER={ident}\nSYSLOG_PID={pid}\n"
                         f"MESSAGE={msg}\n\n")
    for f in list(outs.values()) + [export]:
        f.close()


if __name__ == "__main__":
    main(*sys.argv[1:])
