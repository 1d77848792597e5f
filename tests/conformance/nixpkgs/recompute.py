#!/usr/bin/env python3
"""Recompute the corpus's expected results with real Nix and a nixpkgs `lib/`.

usage: recompute.py NIXPKGS_LIB [--write] [--dir=CORPUS] [CASE...]

--dir names another corpus of `.nix` cases laid out as `nix/` is (CASE/default.nix and
CASE/expected.json), such as `../nix-own`; its cases have no YAML form.

Every case of `nix/` is evaluated by `nix-instantiate --eval --strict --json` as
`(lib.evalModules { modules = [ nix/CASE/default.nix ]; }).config`, with every `_module`
attribute removed at any depth. A failed evaluation is classified by Nix's own message into
the corpus's error kinds, with the option it names.

Without --write, each result is compared with `nix/CASE/expected.json` and with the YAML form
`merge/CASE.expected.json` by the corpus's rules (the config, or the error's kind and option;
messages name other files and are not compared), and the differences are printed. With
--write, `nix/CASE/expected.json` is rewritten, and so is the YAML form's where the kind,
option or config differs (its message then names the `.nix` files).

Exit status: 0 when every case agrees (or was written), 1 when some differ, 2 on bad usage
or when Nix cannot be run.
"""
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
NIX_DIR = os.path.join(HERE, "nix")
MERGE_DIR = os.path.join(HERE, "merge")

# The expression evaluated for one case; `lib` and `case` are passed with --arg.
EXPR = """
{ lib, case }:
let
  strip = v:
    if builtins.isAttrs v then builtins.mapAttrs (_: strip) (builtins.removeAttrs v [ "_module" ])
    else if builtins.isList v then map strip v
    else v;
in strip (lib.evalModules { modules = [ case ]; }).config
"""

# Nix's messages, most specific first: (kind, pattern). The option is the first quoted name
# in the message (`a.b' or `a.b`), except for kinds whose message names none.
KINDS = [
    ("declared-twice", re.compile(r"is already declared in")),
    ("null-mix", re.compile(r"is defined both null and not null")),
    ("unique", re.compile(r"expected to be unique")),
    ("conflict", re.compile(r"has conflicting definition values")),
    ("type", re.compile(r"is not of type")),
    ("undeclared", re.compile(r"does not exist\. Definition values")),
    ("undefined", re.compile(r"was accessed but has no value defined|is used but not defined")),
    ("read-only", re.compile(r"is read-only")),
    ("condition", re.compile(r"mkIf.{0,3} called with a non-Boolean condition")),
    ("recursion", re.compile(r"infinite recursion encountered")),
    ("removed", re.compile(r"can no longer be used since it's been removed")),
    # The Nix language's own errors inside a definition (assert, throw, abort).
    ("eval", re.compile(r"assertion .* failed|evaluation aborted with the following error message|^(?!.*option `).*$", re.S)),
]
OPTION = re.compile(r"option `((?:[^`'\"]|\"[^\"]*\")+)['`]")


def classify(message):
    """(kind, option) of a Nix error message; kind None when it is none of the corpus's."""
    for kind, pattern in KINDS:
        if pattern.search(message):
            if kind in ("condition", "recursion", "eval"):
                return kind, None
            m = OPTION.search(message)
            return kind, m.group(1) if m else None
    return None, None


def message_of(stderr, lib, case_dir):
    """Nix's error text without the `error: ` prefix, with machine paths made portable."""
    text = stderr.strip()
    start = text.find("error:")
    if start >= 0:
        text = text[start + len("error:"):].lstrip()
    text = text.replace(os.path.realpath(lib), "nixpkgs/lib")
    text = text.replace(os.path.realpath(NIX_DIR) + "/", "")
    return text


def evaluate(lib, case):
    case_dir = os.path.join(NIX_DIR, case)
    p = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "--readonly-mode",
         "--arg", "lib", f"import {os.path.realpath(lib)}",
         "--arg", "case", os.path.join(os.path.realpath(case_dir), "default.nix"),
         "-E", EXPR],
        capture_output=True, text=True, timeout=120)
    if p.returncode == 0:
        return {"config": json.loads(p.stdout)}
    message = message_of(p.stderr, lib, case_dir)
    kind, option = classify(message)
    if kind is None:
        raise RuntimeError(f"{case}: Nix failed in a way the corpus has no kind for:\n{message}")
    return {"error": {"kind": kind, "message": message, "option": option}}


DEFINITION = re.compile(r'\."\[definition [0-9]+-entry [0-9]+\]"')


def same(a, b):
    """Whether two results agree by the corpus's rules."""
    if "config" in a or "config" in b:
        return a.get("config") == b.get("config")
    ea, eb = a["error"], b["error"]
    norm = lambda o: DEFINITION.sub("", o) if o else o
    return ea["kind"] == eb["kind"] and norm(ea["option"]) == norm(eb["option"])


def brief(r):
    if "config" in r:
        return "config " + json.dumps(r["config"], sort_keys=True)[:200]
    return f"error {r['error']['kind']} at {r['error']['option']}"


def write(path, result):
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


def main(argv):
    global NIX_DIR
    args = [a for a in argv if not a.startswith("--")]
    dirs = [a[len("--dir="):] for a in argv if a.startswith("--dir=")]
    if not args or any(a != "--write" and not a.startswith("--dir=") for a in argv if a.startswith("--")):
        print(__doc__, file=sys.stderr)
        return 2
    if dirs:
        NIX_DIR = os.path.abspath(dirs[-1])
    lib, cases = args[0], args[1:]
    if not os.path.isfile(os.path.join(lib, "modules.nix")):
        print(f"{lib}: not a nixpkgs lib/ directory (no modules.nix)", file=sys.stderr)
        return 2
    write_mode = "--write" in argv
    cases = cases or sorted(d for d in os.listdir(NIX_DIR)
                            if os.path.isfile(os.path.join(NIX_DIR, d, "default.nix")))
    differ = 0
    for case in cases:
        try:
            got = evaluate(lib, case)
        except FileNotFoundError:
            print("nix-instantiate not found (Debian: apt-get install nix-bin)", file=sys.stderr)
            return 2
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
            print(f"FAIL {case}: {e}")
            differ += 1
            continue
        nix_expected = os.path.join(NIX_DIR, case, "expected.json")
        yaml_expected = os.path.join(MERGE_DIR, case + ".expected.json")
        if not os.path.isfile(os.path.join(MERGE_DIR, case + ".yaml")):
            yaml_expected = None
        agrees = True
        # The `.nix` form's file is Nix's output itself, message included; the YAML form's
        # messages name other files, so it agrees by the corpus's rules.
        for path, agree in ((nix_expected, lambda old: old == got), (yaml_expected, lambda old: same(old, got))):
            if path is None:
                continue
            try:
                with open(path) as f:
                    old = json.load(f)
            except FileNotFoundError:
                old = None
            if old is not None and agree(old):
                continue
            if write_mode:
                write(path, got)
                print(f"wrote {os.path.relpath(path, HERE)}: {brief(got)}")
            else:
                agrees = False
                was = brief(old) if old is not None else "missing"
                print(f"DIFFERS {os.path.relpath(path, HERE)}: Nix gives {brief(got)}; "
                      f"the file says {was}")
        differ += not agrees
    print(f"{len(cases) - differ}/{len(cases)} cases agree with Nix")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
