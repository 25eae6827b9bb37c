#!/usr/bin/env python3
"""Builds a man page from a hand-written roff template and the sources the
programs document themselves with, so the two cannot drift.

The template (man/*.in) is roff with placeholders, each alone on its line
unless noted:
  @VERSION@, @DATE@          inline: the project version, the page date
                             (SOURCE_DATE_EPOCH when set, as for a package)
  @HELP_SYNOPSIS@            the Usage: lines of --help
  @HELP_DESCRIPTION@         the text --help prints before Usage:
  @HELP_OPTIONS@             every option and positional of --help
  @HELP_COMMANDS@            each subcommand (recursively): its description,
                             usage, options and its own footer lines
  @HELP_NOTE:Label@          the footer line of --help that starts "Label:"
  @HELP_NOTES@               the footer lines no @HELP_NOTE@ took
  @CONFIG_KEYS@              every key of the example configuration file
                             (--config-file), with its comment and default
Everything the --help of the program shows must land in the page: an
unknown placeholder, a Usage:/Options:/Subcommands: part of --help with no
placeholder for it, or a footer line placed nowhere is an error (exit 1).

--help is CLI11's format: description, "Usage: ...", headed lists
("Options:", "Positionals:", "Subcommands:") of two-space-indented entries
whose description follows after two spaces or on deeper-indented lines,
then footer lines.
"""
import argparse
import datetime
import os
import re
import subprocess
import sys
import textwrap

WIDTH = 78
HEADING = re.compile(r"^([A-Z][A-Za-z ]*):$")
ENTRY = re.compile(r"^  (\S.*?)(?:  +(\S.*))?$")
LABELLED = re.compile(r"^([A-Za-z][\w .()]{0,24}): (.*)$")


class ManError(Exception):
    pass


# ---- roff output ----------------------------------------------------------

def escape(text):
    """Plain text to roff: backslashes shown, option dashes as \\- ."""
    text = text.replace("\\", "\\e")
    return re.sub(r"(?<![\w-])(--?)(?=[A-Za-z0-9])",
                  lambda m: "\\-" * len(m.group(1)), text)


def fill(roff_text):
    """Wraps roff text to WIDTH; no output line may start as a request."""
    lines = textwrap.wrap(roff_text, WIDTH, break_long_words=False, break_on_hyphens=False)
    return [("\\&" + line) if line[:1] in (".", "'") else line for line in lines]


def bold(text):
    return f"\\fB{escape(text)}\\fR"


def italic(text):
    return f"\\fI{escape(text)}\\fR"


# ---- --help parsing -------------------------------------------------------

class Entry:
    """One line of a headed list: an option, a positional or a subcommand."""

    def __init__(self, spec, description):
        self.spec = spec
        self.description = description


class Help:
    def __init__(self, text):
        lines = text.rstrip("\n").split("\n")
        usage_at = next((i for i, line in enumerate(lines) if line.startswith("Usage: ")), None)
        if usage_at is None:
            raise ManError("--help has no 'Usage:' line")
        self.description = " ".join(line.strip() for line in lines[:usage_at] if line.strip())
        self.usage = lines[usage_at][len("Usage: "):].strip()
        self.lists = {}   # heading -> [Entry]
        self.footer = []
        heading = None
        for line in lines[usage_at + 1:]:
            if not line.strip():
                heading = None
                continue
            match = HEADING.match(line)
            if match:
                heading = match.group(1)
                self.lists.setdefault(heading, [])
                continue
            if heading is None:
                self.footer.append(line.strip())
            elif line.startswith("   ") and self.lists[heading]:
                entry = self.lists[heading][-1]
                entry.description = (entry.description + " " + line.strip()).strip()
            else:
                match = ENTRY.match(line)
                if not match:
                    raise ManError(f"cannot read this line of --help: {line!r}")
                self.lists[heading].append(Entry(match.group(1), match.group(2) or ""))

    def options(self):
        """Entries of every list but Subcommands, positionals first."""
        ordered = sorted((h for h in self.lists if h != "Subcommands"),
                         key=lambda h: (h != "Positionals", h))
        return [entry for h in ordered for entry in self.lists[h]]

    def subcommands(self):
        return [entry.spec for entry in self.lists.get("Subcommands", [])]


def run_help(program, words):
    result = subprocess.run([program, *words, "--help"], capture_output=True, text=True,
                            timeout=30)
    if result.returncode != 0:
        raise ManError(f"{program} {' '.join(words)} --help exited {result.returncode}: "
                       f"{result.stderr.strip()}")
    return Help(result.stdout)


def option_names(spec):
    """'-c,--config TEXT=x' -> (['-c', '--config'], 'TEXT=x')."""
    names, _, rest = spec.partition(" ")
    return names.split(","), rest.strip()


def describe_type(rest):
    """CLI11's 'TYPE[:CHECK][=DEFAULT] [...] [REQUIRED]' -> (roff argument, notes)."""
    notes = []
    if rest.endswith("REQUIRED"):
        rest = rest[:-len("REQUIRED")].strip()
        notes.append("Required.")
    repeated = rest.endswith("...")
    if repeated:
        rest = rest[:-3].strip()
    default = None
    match = re.match(r"^(.*?)(?:=(\S+))?$", rest)
    rest, default = match.group(1), match.group(2)
    if not rest:
        argument = ""
    else:
        base, _, check = rest.partition(":")
        choices = re.fullmatch(r"\{(.*)\}", check)
        bounds = re.fullmatch(r"\S+ in \[(\S+) - (\S+)\]", check)
        if choices:
            argument = "|".join(bold(choice) for choice in choices.group(1).split(","))
        elif bounds:
            argument = italic(base)
            notes.insert(0, f"From {escape(bounds.group(1))} to {escape(bounds.group(2))}.")
        elif check and re.fullmatch(r"[A-Z]+", check):
            argument = italic(check)
        elif check:
            raise ManError(f"unknown CLI11 type annotation {rest!r}")
        else:
            argument = italic(base)
        if repeated:
            argument += " \\&..."
    if default is not None:
        notes.append(f"Default: {bold(default)}.")
    return argument, notes


def entry_roff(entry, positional):
    if positional:
        name, _, rest = entry.spec.partition(" ")
        argument, notes = describe_type(rest.strip())
        tag = italic(name) + (" \\&..." if argument.endswith("\\&...") else "")
        notes = [note for note in notes if note != "Required."]
    else:
        names, rest = option_names(entry.spec)
        argument, notes = describe_type(rest)
        tag = ", ".join(bold(name) for name in names) + (" " + argument if argument else "")
    text = escape(entry.description.rstrip("."))
    text = (text[:1].upper() + text[1:] + "." if text else "") + "".join(" " + n for n in notes)
    return [".TP", tag, *fill(text)]


def options_roff(help_):
    out = []
    positionals = {id(e) for e in help_.lists.get("Positionals", [])}
    for entry in help_.options():
        out += entry_roff(entry, id(entry) in positionals)
    return out


def synopsis_roff(usage):
    words = usage.split(" ")
    arguments = [escape(word) if word.startswith("[") else italic(word) for word in words[1:]]
    return [".SY " + escape(words[0]), *fill(" ".join(arguments)), ".YS"]


def description_roff(help_, program_name):
    text = help_.description
    if text.startswith(program_name + ": "):
        text = text[len(program_name) + 2:]
        return fill(bold(program_name) + ": " + escape(text))
    return fill(escape(text))


def note_roff(line):
    match = LABELLED.match(line)
    if match:
        return [".TP", bold(match.group(1)), *fill(escape(match.group(2)))]
    return [".PP", *fill(escape(line))]


def commands_roff(program, words, parent_footer):
    """Each subcommand of `program words...`, depth first."""
    out = []
    help_ = run_help(program, words)
    for name in help_.subcommands():
        sub = run_help(program, words + [name])
        path = " ".join([os.path.basename(program), *words, name])
        out += [f'.SS "{escape(path)}"']
        out += fill(escape(sub.description[:1].upper() + sub.description[1:].rstrip(".") + "."))
        out += [".PP", *fill(bold(path) + " " + " ".join(
            escape(w) if w.startswith("[") else italic(w)
            for w in sub.usage.split(" ")[len(words) + 2:]))]
        if sub.options():
            out += [".RS"] + options_roff(sub) + [".RE"]
        own = [line for line in sub.footer if line not in parent_footer]
        for line in own:
            out += note_roff(line)
        out += commands_roff(program, words + [name], parent_footer)
    return out


# ---- the example configuration file ---------------------------------------

def config_keys(path):
    """conf/smtpscope.yaml -> [(section, key, default YAML text, doc)]."""
    keys, section, doc = [], None, []
    with open(path, encoding="utf-8") as conf:
        for number, line in enumerate(conf, 1):
            line = line.rstrip("\n")
            where = f"{path}:{number}"
            if not line.strip():
                continue
            if line.startswith("#"):
                if section is not None:
                    raise ManError(f"{where}: a comment at column 0 after the first section")
                continue
            if match := re.fullmatch(r"([a-z_]+):", line):
                section, doc = match.group(1), []
            elif match := re.fullmatch(r"  # ?(.*)", line):
                doc.append(match.group(1))
            elif match := re.fullmatch(r"  ([a-z_]+): (.+)", line):
                if section is None or not doc:
                    raise ManError(f"{where}: key {match.group(1)} without a section or comment")
                keys.append((section, match.group(1), match.group(2), " ".join(doc)))
                doc = []
            else:
                raise ManError(f"{where}: not a section, key or comment: {line!r}")
    if not keys:
        raise ManError(f"{path}: no keys")
    return keys


def config_roff(path):
    out, section = [], None
    for sec, key, default, doc in config_keys(path):
        if sec != section:
            out.append(f".SS {sec}")
            section = sec
        text = escape(doc[:1].upper() + doc[1:].rstrip(".") + ".")
        out += [".TP", bold(f"{sec}.{key}"), *fill(text + " Default: " + bold(default) + ".")]
    return out


# ---- the page -------------------------------------------------------------

def page_date():
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    moment = (datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch
              else datetime.datetime.now(datetime.timezone.utc))
    return moment.strftime("%Y-%m-%d")


def render(template_path, program, version, config_file):
    help_ = run_help(program, []) if program else None
    footer_left = list(help_.footer) if help_ else []
    used = set()
    out = [f'.\\" Generated by man/manpage.py from {os.path.basename(template_path)}: '
           'edit that.']
    with open(template_path, encoding="utf-8") as template:
        lines = template.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    # @HELP_NOTES@ takes what the named notes leave, wherever they stand.
    for label in re.findall(r"^@HELP_NOTE:(.+)@$", "\n".join(lines), re.M):
        line_ = next((f for f in footer_left if f.startswith(label + ": ")), None)
        if line_ is None:
            raise ManError(f"{template_path}: --help has no footer line '{label}: ...'")
        footer_left.remove(line_)
    for line in lines:
        line = line.replace("@VERSION@", version).replace("@DATE@", page_date())
        placeholder = re.fullmatch(r"@([A-Z_]+)(?::(.+))?@", line)
        if line.startswith('.\\"'):
            continue  # the template's own comments stay out of the page
        if not placeholder:
            if re.search(r"@[A-Z_]+(:[^@]*)?@", line):
                raise ManError(f"{template_path}: placeholder not alone on its line: {line!r}")
            out.append(line)
            continue
        name, argument = placeholder.groups()
        if name.startswith("HELP_") and help_ is None:
            raise ManError(f"{template_path}: @{name}@ needs --program")
        used.add(name)
        if name == "HELP_SYNOPSIS":
            out += synopsis_roff(help_.usage)
        elif name == "HELP_DESCRIPTION":
            out += description_roff(help_, os.path.basename(program))
        elif name == "HELP_OPTIONS":
            out += options_roff(help_)
        elif name == "HELP_COMMANDS":
            out += commands_roff(program, [], help_.footer)
        elif name == "HELP_NOTE":
            line_ = next(f for f in help_.footer if f.startswith(argument + ": "))
            out += fill(escape(line_[len(argument) + 2:]))
        elif name == "HELP_NOTES":
            for line_ in footer_left:
                out += note_roff(line_)
            footer_left = []
        elif name == "CONFIG_KEYS":
            if not config_file:
                raise ManError(f"{template_path}: @CONFIG_KEYS@ needs --config-file")
            out += config_roff(config_file)
        else:
            raise ManError(f"{template_path}: unknown placeholder @{name}@")
    if help_:
        needed = {"HELP_SYNOPSIS", "HELP_DESCRIPTION", "HELP_OPTIONS"}
        if help_.subcommands():
            needed.add("HELP_COMMANDS")
        missing = needed - used
        if missing:
            raise ManError(f"{template_path}: --help has parts the page leaves out: "
                           + ", ".join(sorted("@" + m + "@" for m in missing)))
        if footer_left:
            raise ManError(f"{template_path}: footer lines of --help placed nowhere "
                           f"(add @HELP_NOTES@): {footer_left}")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("template")
    parser.add_argument("output")
    parser.add_argument("--version", required=True, help="project version for .TH")
    parser.add_argument("--program", help="the built program whose --help the page shows")
    parser.add_argument("--config-file", help="the example configuration file")
    args = parser.parse_args()
    try:
        page = render(args.template, args.program, args.version, args.config_file)
    except (ManError, OSError, subprocess.SubprocessError) as error:
        print(f"manpage.py: {error}", file=sys.stderr)
        return 1
    with open(args.output + ".tmp", "w", encoding="utf-8") as out:
        out.write(page)
    os.replace(args.output + ".tmp", args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
