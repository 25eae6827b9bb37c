"""The built man pages against what they document: every option of every
--help (each subcommand in its own section), every key of the example
configuration file, options named in the hand-written text exist; the pages
render with man -l and are clean for mandoc -T lint and groff -ww.

Reads --help and conf/smtpscope.yaml with its own small parsers, not
manpage.py's, so a fault in the generator shows here."""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(HERE)
BUILD_DIR = os.environ.get("SMTPSCOPE_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
PROGRAMS = {  # page -> (program, subdirectory of the build)
    "smtpscope.1": ("smtpscope", "cli"),
    "smtpscope-milter.8": ("smtpscope-milter", "milter"),
    "smtpscope-policyd.8": ("smtpscope-policyd", "policyd"),
}
PAGES = [*PROGRAMS, "smtpscope.yaml.5"]


def page_text(page):
    with open(os.path.join(BUILD_DIR, "man", page), encoding="utf-8") as f:
        return f.read()


def program_path(page):
    name, subdir = PROGRAMS[page]
    return os.path.join(BUILD_DIR, subdir, name)


def help_text(program, words=()):
    result = subprocess.run([program, *words, "--help"], capture_output=True, text=True,
                            timeout=30, check=True)
    return result.stdout


def help_options(text):
    """Option names of the entries of every list of a --help text."""
    names = []
    for line in text.splitlines():
        match = re.match(r"^  (-[^ ]+)", line)
        if match:
            names += match.group(1).split(",")
    return names


def help_subcommands(text):
    block = re.search(r"^Subcommands:\n((?:  .*\n?)+)", text, re.M)
    return [line.split()[0] for line in block.group(1).splitlines()
            if re.match(r"^  \S", line)] if block else []


def roff_option(name):
    return name.replace("-", "\\-", 2 if name.startswith("--") else 1)


def command_sections(page):
    """'smtpscope db prune' -> its text, from the .SS headings of a page."""
    parts = re.split(r'^\.SS "([^"]+)"$', page, flags=re.M)
    return {parts[i]: re.split(r"^\.SH ", parts[i + 1], flags=re.M)[0]
            for i in range(1, len(parts), 2)}


def section(page, name):
    match = re.search(rf"^\.SH {re.escape(name)}\n(.*?)(?=^\.SH |\Z)", page, re.M | re.S)
    return match.group(1) if match else ""


def config_file_keys():
    keys, current = [], None
    with open(os.path.join(SOURCE_DIR, "conf", "smtpscope.yaml"), encoding="utf-8") as f:
        for line in f:
            if match := re.match(r"^([a-z_]+):\s*$", line):
                current = match.group(1)
            elif match := re.match(r"^  ([a-z_]+):", line):
                keys.append(f"{current}.{match.group(1)}")
    return keys


class ManPages(unittest.TestCase):
    def test_every_option_of_the_daemons_help_is_in_its_page(self):
        for page in ("smtpscope-milter.8", "smtpscope-policyd.8"):
            options = section(page_text(page), "OPTIONS")
            for name in help_options(help_text(program_path(page))):
                with self.subTest(page=page, option=name):
                    self.assertIn(f"\\fB{roff_option(name)}\\fR", options)

    def test_every_command_and_its_options_are_in_smtpscope_1(self):
        program = program_path("smtpscope.1")
        page = page_text("smtpscope.1")
        for name in help_options(help_text(program)):
            self.assertIn(f"\\fB{roff_option(name)}\\fR", section(page, "OPTIONS"), name)
        sections = command_sections(page)
        pending, seen = [[]], []
        while pending:
            words = pending.pop(0)
            text = help_text(program, words)
            if words:
                title = " ".join(["smtpscope", *words])
                seen.append(title)
                self.assertIn(title, sections)
                for name in help_options(text):
                    with self.subTest(command=title, option=name):
                        self.assertIn(f"\\fB{roff_option(name)}\\fR", sections[title])
            pending += [words + [sub] for sub in help_subcommands(text)]
        self.assertGreaterEqual(len(seen), 9)
        self.assertEqual(sorted(sections), sorted(seen))

    def test_options_in_the_hand_written_text_exist(self):
        """The templates' own prose and examples name only real options."""
        known = set()
        for page in PROGRAMS:
            program = program_path(page)
            pending = [[]]
            while pending:
                words = pending.pop(0)
                text = help_text(program, words)
                known.update(help_options(text))
                pending += [words + [sub] for sub in help_subcommands(text)]
        for page in PAGES:
            with open(os.path.join(HERE, page + ".in"), encoding="utf-8") as f:
                # other programs' command lines (systemctl) have their own options
                template = "\n".join(line for line in f.read().splitlines()
                                      if not line.startswith("systemctl "))
            for dashes, name in re.findall(r"(?<![\w-])((?:\\-){1,2})([A-Za-z][\w-]*)", template):
                option = "-" * (len(dashes) // 2) + name
                with self.subTest(page=page, option=option):
                    self.assertIn(option, known)

    def test_every_key_of_the_configuration_file_is_in_smtpscope_yaml_5(self):
        keys = config_file_keys()
        self.assertGreater(len(keys), 30)
        documented = re.findall(r"^\.TP\n\\fB([a-z_]+\.[a-z_]+)\\fR$",
                                section(page_text("smtpscope.yaml.5"), "KEYS"), re.M)
        self.assertEqual(documented, keys)

    def test_pages_carry_the_programs_version(self):
        for page in PAGES:
            program = program_path(page) if page in PROGRAMS else program_path("smtpscope.1")
            version = subprocess.run([program, "--version"], capture_output=True, text=True,
                                     timeout=30, check=True).stdout.split()[-1]
            with self.subTest(page=page):
                self.assertRegex(page_text(page),
                                 rf'(?m)^\.TH \S+ \d \d{{4}}-\d\d-\d\d "smtpscope {re.escape(version)}"')

    def test_a_template_that_leaves_out_part_of_help_is_refused(self):
        """New subcommands or footer lines cannot fall out of a page unseen."""
        cases = [("smtpscope.1", ["@HELP_COMMANDS@"], "@HELP_COMMANDS@"),
                 ("smtpscope-milter.8", ["@HELP_NOTE:Signals@", "@HELP_NOTES@"],
                  "Signals: SIGTERM")]
        for page, lines, expected in cases:
            with self.subTest(page=page), tempfile.TemporaryDirectory() as temp:
                with open(os.path.join(HERE, page + ".in"), encoding="utf-8") as f:
                    template = f.read()
                for line in lines:
                    self.assertIn(line + "\n", template)
                    template = template.replace(line + "\n", "")
                cut = os.path.join(temp, page + ".in")
                with open(cut, "w", encoding="utf-8") as f:
                    f.write(template)
                result = subprocess.run(
                    [sys.executable, os.path.join(HERE, "manpage.py"), cut,
                     os.path.join(temp, page), "--version", "0", "--program", program_path(page)],
                    capture_output=True, text=True, timeout=60)
                self.assertEqual(result.returncode, 1)
                self.assertIn(expected, result.stderr)
                self.assertFalse(os.path.exists(os.path.join(temp, page)))

    def test_groff_reports_nothing(self):
        for page in PAGES:
            result = subprocess.run(["groff", "-ww", "-z", "-man",
                                     os.path.join(BUILD_DIR, "man", page)],
                                    capture_output=True, text=True, timeout=60)
            with self.subTest(page=page):
                self.assertEqual((result.returncode, result.stderr), (0, ""))

    @unittest.skipUnless(shutil.which("mandoc"), "mandoc is not installed (Debian package mandoc)")
    def test_mandoc_lint_reports_nothing(self):
        for page in PAGES:
            result = subprocess.run(["mandoc", "-T", "lint", "-W", "all",
                                     os.path.join(BUILD_DIR, "man", page)],
                                    capture_output=True, text=True, timeout=60)
            with self.subTest(page=page):
                self.assertEqual((result.returncode, result.stdout + result.stderr), (0, ""))

    def test_man_renders_each_page(self):
        for page in PAGES:
            name = page.rsplit(".", 1)[0]
            result = subprocess.run(["man", "-l", os.path.join(BUILD_DIR, "man", page)],
                                    capture_output=True, text=True, timeout=60,
                                    env=os.environ | {"MANWIDTH": "80", "PAGER": "cat",
                                                      "MANPAGER": "cat", "LC_ALL": "C.UTF-8"})
            with self.subTest(page=page):
                self.assertEqual((result.returncode, result.stderr), (0, ""))
                self.assertIn("NAME", result.stdout)
                self.assertIn(f"{name} -", result.stdout)
                self.assertIn("SEE ALSO", result.stdout)


if __name__ == "__main__":
    unittest.main()
