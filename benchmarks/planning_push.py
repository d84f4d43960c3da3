"""Push goal reaching, every available model with the same planner: the table behind the planning bars.

Rows: the true simulator (ceiling), random actions (floor), and every shipped checkpoint for Push
(``jepa_push``, ``diffusion_push``, ``autoregressive_push``) that exists. Same episodes, same CEM settings,
same state objective (probe / state head / colour judge on pictures, whichever the model offers).

    .venv/bin/python benchmarks/planning_push.py --episodes 50 --out benchmarks/results/planning_push

Writes ``plan.json``, ``index.html`` and clips under ``--out`` (see ``gedanken plan``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from typer.testing import CliRunner

from gedanken.cli import app
from gedanken.models import CHECKPOINT_ROOT


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=50)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/planning_push"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--skip-baselines", action="store_true", help="Only the learned models.")
    args = ap.parse_args()
    models = [] if args.skip_baselines else ["simulator", "random"]
    models += [
        str(CHECKPOINT_ROOT / n)
        for n in ("jepa_push", "diffusion_push", "autoregressive_push")
        if (CHECKPOINT_ROOT / n).is_dir()
    ]
    cmd = ["plan", "--episodes", str(args.episodes), "--out", str(args.out), "--threads", str(args.threads)]
    for m in models:
        cmd += ["--model", m]
    res = CliRunner().invoke(app, cmd)
    print(res.output)
    if res.exit_code:
        raise SystemExit(res.exit_code)


if __name__ == "__main__":
    main()
