#!/usr/bin/env python3
"""Recomputes the expected results of the Nix language corpus with real Nix.

Each `NAME.nix` here is evaluated with `nix-instantiate --eval --strict --json` (no nixpkgs,
no search path); the result goes to `NAME.expected.json`: `{"value": ...}`, or
`{"error": "..."}` with the first line of Nix's message. `--write` writes the files;
without it, the script only reports cases whose stored result differs (exit 1).
"""
import json
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def evaluate(case: pathlib.Path) -> dict:
    found = _evaluate(case)
    if "error" in found:
        found["error"] = found["error"].replace(str(HERE), "$DIR")
    return found


def _evaluate(case: pathlib.Path) -> dict:
    r = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", str(case)],
        capture_output=True, text=True, cwd=HERE,
        env={"PATH": "/usr/bin:/bin", "NIX_PATH": "", "HOME": "/nonexistent"},
    )
    if r.returncode == 0:
        # Paths name this folder as $DIR, so the results hold on any checkout.
        return {"value": json.loads(r.stdout.replace(str(HERE), "$DIR"))}
    for line in r.stderr.splitlines():
        line = line.strip()
        if line.startswith("error:"):
            msg = line[len("error:"):].strip()
            if msg:
                return {"error": msg}
    # Nix 2.8 puts some messages on the line after "error:".
    lines = [l.strip() for l in r.stderr.splitlines() if l.strip()]
    i = next((k for k, l in enumerate(lines) if l.startswith("error:")), None)
    return {"error": lines[i + 1] if i is not None and i + 1 < len(lines) else r.stderr.strip()}


def main() -> int:
    write = "--write" in sys.argv
    differ = 0
    for case in sorted(HERE.glob("*.nix")):
        want = evaluate(case)
        out = case.with_suffix(".expected.json")
        text = json.dumps(want, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
        if write:
            out.write_text(text)
        elif not out.exists() or out.read_text() != text:
            differ += 1
            print(f"{case.name}: stored result differs from nix-instantiate's: {text.strip()}")
    print(f"{len(list(HERE.glob('*.nix')))} cases, {differ} differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
