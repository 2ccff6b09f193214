# SPDX-License-Identifier: Apache-2.0
"""Man pages: they render without warnings, mod_dpop(8) has a section with
Syntax, Context, Default and Example for every directive the module
registers (read from the AP_INIT_* entries of the glue's command tables),
and each CLI's page names every option its --help prints (the installed
binaries from the DESTDIR install)."""
import glob
import os
import re
import shutil

import pytest

from pkgtest import TOP, run

MAN = os.path.join(TOP, "man")
PAGES = ["dpopctl.1", "dpop-policy.1", "dpop-audit.1", "mod_dpop.8"]
CLIS = {"dpopctl": "dpopctl.1", "dpop-policy": "dpop-policy.1", "dpop-audit": "dpop-audit.1"}


def page(name):
    return open(os.path.join(MAN, name), encoding="utf-8").read()


def plain(roff):
    """roff source -> text for word searches: hyphens, quotes and font
    escapes undone, comments dropped."""
    lines = [l for l in roff.splitlines() if not l.startswith('.\\"')]
    s = "\n".join(lines)
    s = s.replace("\\-", "-").replace("\\(dq", '"').replace("\\(aq", "'").replace("\\e", "\\")
    s = re.sub(r"\\f[BIRP]|\\f\[[A-Z]*\]|\\&|\\c", "", s)
    return s


def test_every_page_is_installed_by_make():
    am = open(os.path.join(MAN, "man.am")).read()
    listed = set(re.findall(r"man/([\w.-]+\.[18])", am))
    assert listed == set(PAGES)
    assert set(os.path.basename(p) for p in glob.glob(os.path.join(MAN, "*.[18]"))) == set(PAGES)


@pytest.mark.parametrize("name", PAGES)
def test_page_renders_without_warnings(name):
    path = os.path.join(MAN, name)
    r = run(["groff", "-man", "-Tutf8", "-ww", "-z", path])
    assert r.returncode == 0 and r.stderr == "", r.stderr
    if shutil.which("man"):
        # What lintian runs on every page it finds in a package.
        r = run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", path],
                env=dict(os.environ, LC_ALL="C.UTF-8", MANWIDTH="80"))
        assert r.returncode == 0 and r.stderr == "", r.stderr
    if shutil.which("mandoc"):
        r = run(["mandoc", "-Tlint", "-W", "warning", path])
        assert r.stdout == "" and r.stderr == "", r.stdout + r.stderr


# ---- directives ----------------------------------------------------------

def _split_args(s):
    """Top-level comma-separated arguments of a C macro call body."""
    args, depth, cur, instr = [], 0, "", False
    i = 0
    while i < len(s):
        c = s[i]
        if instr:
            cur += c
            if c == "\\":
                cur += s[i + 1]
                i += 1
            elif c == '"':
                instr = False
        elif c == '"':
            instr = True
            cur += c
        elif c in "([{":
            depth += 1
            cur += c
        elif c in ")]}":
            if depth == 0:
                args.append(cur.strip())
                return args
            depth -= 1
            cur += c
        elif c == "," and depth == 0:
            args.append(cur.strip())
            cur = ""
        else:
            cur += c
        i += 1
    return args


def registered_directives():
    """{name: (context expression with macros expanded, help text)} from every
    AP_INIT_* entry in the glue (mod_dpop/*.c)."""
    out = {}
    for src in sorted(glob.glob(os.path.join(TOP, "mod_dpop", "*.c"))):
        text = open(src, encoding="utf-8").read()
        macros = dict(re.findall(r"^#define\s+(\w+)\s+(.+)$", text, re.M))
        for m in re.finditer(r"AP_INIT_\w+\s*\(", text):
            args = _split_args(text[m.end():])
            name = args[0].strip('"')
            ctx = args[3]
            for _ in range(3):
                ctx = re.sub(r"\b[A-Z_]+\b", lambda x: macros.get(x.group(0), x.group(0)), ctx)
            helptext = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', args[4]))
            out[name] = (ctx, helptext)
    return out


def directive_sections():
    """{name: {field: value line}} from mod_dpop.8's `.SS Name` sections."""
    src = page("mod_dpop.8")
    sections = {}
    for m in re.finditer(r"^\.SS (\S+)\n(.*?)(?=^\.S[SH] )", src, re.M | re.S):
        lines = m.group(2).splitlines()
        fields = {}
        for i, l in enumerate(lines):
            f = re.match(r"^\.B (Syntax|Context|Default|Example):$", l)
            if f and i + 1 < len(lines):
                fields[f.group(1)] = plain(lines[i + 1]).lstrip(".BIR ").strip().strip('"')
        sections[m.group(1)] = fields
    return sections


def test_directives_found_in_source():
    names = registered_directives()
    # The contract's names (DESIGN.md "Apache configuration") at least.
    for n in ("DPoPTokenJWKS", "DPoPReplayCache", "DPoPPolicyFile", "DPoPAuditLog",
              "DPoPMode", "DPoPAllowBearer", "DPoPNonceSecret"):
        assert n in names


def test_every_directive_has_a_complete_section():
    sections = directive_sections()
    problems = []
    for name, (ctx, helptext) in sorted(registered_directives().items()):
        sec = sections.get(name)
        if sec is None:
            problems.append("%s: no '.SS %s' section in man/mod_dpop.8" % (name, name))
            continue
        for field in ("Syntax", "Context", "Default", "Example"):
            if not sec.get(field):
                problems.append("%s: no %s" % (name, field))
        if not sec.get("Syntax", "").startswith(name):
            problems.append("%s: Syntax does not start with the name: %r" % (name, sec.get("Syntax")))
        if not sec.get("Example", "").startswith(name + " "):
            problems.append("%s: Example does not use the directive: %r" % (name, sec.get("Example")))
        context = sec.get("Context", "")
        in_dir = "ACCESS_CONF" in ctx or "OR_" in ctx
        if "RSRC_CONF" in ctx and not context.startswith("server config, virtual host"):
            problems.append("%s: registered for the server config, page says %r" % (name, context))
        if in_dir != ("directory" in context):
            problems.append("%s: registered context %s, page says %r" % (name, ctx, context))
        # A default the module's own help text states must be the page's.
        d = re.search(r"default (\S+?)\)|(\S+) \(default\)", helptext)
        if d:
            want = d.group(1) or d.group(2)
            if not sec.get("Default", "").startswith(want):
                problems.append("%s: help says default %s, page says %r" % (name, want, sec.get("Default")))
    assert not problems, "\n".join(problems)


def test_no_section_for_an_unknown_directive():
    extra = set(directive_sections()) - set(registered_directives())
    assert not extra, "man/mod_dpop.8 documents directives the module does not register: %s" % extra


# ---- CLI options ---------------------------------------------------------

FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def help_texts(binary):
    """(texts, commands): the --help output of binary ("") and of each
    command it lists (commands whose own --help fails are left out of
    texts), and the commands it lists."""
    top = run([binary, "--help"])
    assert top.returncode == 0, "%s --help: %s" % (binary, top.stderr)
    texts = {"": top.stdout}
    cmds = set(re.findall(r"^\s{2}([a-z][a-z-]+)\s", top.stdout, re.M))
    cmds |= set(re.findall(r"^(?:usage:|\s+)\s*\S*%s\s+(?:\[[^]]*\]\.*\s+)*([a-z][a-z-]+)\b"
                           % re.escape(os.path.basename(binary)), top.stdout, re.M))
    cmds.discard("")
    for c in sorted(cmds):
        r = run([binary, c, "--help"])
        if r.returncode == 0:
            texts[c] = r.stdout
    return texts, cmds


@pytest.mark.parametrize("cli", sorted(CLIS))
def test_every_help_option_is_in_the_man_page(installed, cli):
    texts, cmds = help_texts(installed.bin(cli))
    assert cmds, "%s --help lists no commands" % cli
    src = plain(page(CLIS[cli]))
    documented = set(FLAG.findall(src))
    missing = {}
    for cmd, text in texts.items():
        for flag in FLAG.findall(text):
            if flag not in documented:
                missing.setdefault(flag, cmd or "(top)")
    assert not missing, "%s: options printed by --help but absent from man/%s: %s" % (
        cli, CLIS[cli], missing)
    # Every command it lists is in the SYNOPSIS.
    synopsis = re.search(r"^\.SH SYNOPSIS\n(.*?)^\.SH ", page(CLIS[cli]), re.M | re.S).group(1)
    for cmd in sorted(cmds):
        assert re.search(r"\b%s\b" % re.escape(cmd), plain(synopsis)), (
                "%s %s not in the SYNOPSIS of man/%s" % (cli, cmd, CLIS[cli]))
    print("%s: %d commands, %d options, all in man/%s" % (
        cli, len(texts) - 1, len({f for t in texts.values() for f in FLAG.findall(t)}), CLIS[cli]))


def test_no_unknown_option_in_a_page(installed):
    """The reverse direction: every option a page describes (in a .TP tag)
    is one its CLI prints in some --help, so a page cannot keep an option
    that was renamed or removed.  --help itself is always accepted."""
    for cli, pg in sorted(CLIS.items()):
        texts, _ = help_texts(installed.bin(cli))
        known = {f for t in texts.values() for f in FLAG.findall(t)} | {"--help"}
        lines = page(pg).splitlines()
        tagged = set()
        for i, l in enumerate(lines):
            if l == ".TP" and i + 1 < len(lines):
                tagged |= set(FLAG.findall(plain(lines[i + 1])))
        assert tagged, pg
        assert tagged <= known, "man/%s describes options %s does not know: %s" % (
            pg, cli, sorted(tagged - known))
