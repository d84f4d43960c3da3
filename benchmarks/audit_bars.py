"""The audit bars of issues #4 and #5, read off audit JSON files into one markdown table.

    .venv/bin/python benchmarks/audit_bars.py benchmarks/results/audit_{diffusion,autoregressive}_{push,bounce}{,_seed1000,_seed2000}.json \
        --out benchmarks/results/audit_bars.md

Each position bar is read two ways: every error curve over its own objects, and on the objects the model and the
baseline both draw (docs/audit.md, "Paired comparisons"); ``gedanken.audit.bars`` holds the thresholds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gedanken.audit.bars import markdown


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "audits", nargs="+", help="audit.json files (gedanken audit --out DIR writes DIR/audit.json)"
    )
    ap.add_argument("--out", default="", help="also write the table here (markdown)")
    args = ap.parse_args()
    audits = []
    for f in args.audits:
        try:
            audits.append((Path(f).stem, json.loads(Path(f).read_text())))
        except (OSError, json.JSONDecodeError) as e:
            sys.exit(f"{f}: cannot read an audit JSON ({e})")
    try:
        table = markdown(audits)
    except (ValueError, KeyError) as e:
        sys.exit(f"not an audit this script can read: {e}")
    cmd = " ".join(["python", "benchmarks/audit_bars.py", *sys.argv[1:]])
    print(table)
    if args.out:  # whole or not at all: written beside, then renamed over
        tmp = Path(args.out).with_suffix(".tmp")
        tmp.write_text(f"<!-- {cmd} -->\n\n{table}")
        tmp.replace(args.out)


if __name__ == "__main__":
    main()
