"""The trainer's own state beside a checkpoint: optimizer, schedule, RNGs, step and seconds (safetensors + JSON).

Read back only by :func:`gedanken.train.trainer.fit` on resume; a damaged or non-finite state is a
``CheckpointError`` naming the folder, never a traceback.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from gedanken.models.checkpoint import TRAINER_FILE, TRAINER_META_FILE, CheckpointError


def save_trainer_state(
    directory: Path,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LambdaLR,
    step: int,
    seconds: float,
) -> None:
    sd = opt.state_dict()
    tensors: dict[str, Tensor] = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if isinstance(v, Tensor):
                tensors[f"optim.{idx}.{k}"] = v.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    np_state = np.random.get_state()
    meta = {
        "step": step,
        "seconds": seconds,
        "optimizer": {"param_groups": sd["param_groups"], "scalars": scalars},
        "scheduler": {k: v for k, v in sched.state_dict().items() if k != "lr_lambdas"},
        "rng": {
            "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
            "numpy": [
                np_state[0],
                np_state[1].tolist(),
                int(np_state[2]),
                int(np_state[3]),
                float(np_state[4]),
            ],
        },
    }
    save_file(tensors, str(directory / TRAINER_FILE))
    (directory / TRAINER_META_FILE).write_text(json.dumps(meta))


def load_trainer_state(
    directory: Path, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LambdaLR
) -> tuple[int, float]:
    meta_path, tens_path = directory / TRAINER_META_FILE, directory / TRAINER_FILE
    if not meta_path.is_file() or not tens_path.is_file():
        raise CheckpointError(f"{directory}: no trainer state to resume from ({TRAINER_META_FILE} missing)")
    try:
        return _restore_trainer_state(meta_path, tens_path, opt, sched)
    except (ValueError, KeyError, TypeError, IndexError, OSError, SafetensorError) as e:  # JSON errors too
        raise CheckpointError(
            f"{directory}: damaged trainer state ({type(e).__name__}: {e}); --no-resume starts the stage over"
        ) from None


def _restore_trainer_state(
    meta_path: Path, tens_path: Path, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LambdaLR
) -> tuple[int, float]:
    meta = json.loads(meta_path.read_text())
    tensors = load_file(str(tens_path))
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise ValueError(f"non-finite values in {', '.join(bad[:3])}")
    if int(meta["step"]) < 0 or not math.isfinite(float(meta["seconds"])):
        raise ValueError(f"step {meta['step']}, seconds {meta['seconds']}")
    state: dict[int, dict[str, Any]] = {}
    for key, v in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = v
    for idx, extra in meta["optimizer"]["scalars"].items():
        state.setdefault(int(idx), {}).update(extra)
    opt.load_state_dict({"state": state, "param_groups": meta["optimizer"]["param_groups"]})
    sched.load_state_dict({**meta["scheduler"], "lr_lambdas": [None] * len(opt.param_groups)})
    torch.set_rng_state(tensors["rng.torch"])
    if torch.cuda.is_available():
        cuda_states = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
        if cuda_states:
            torch.cuda.set_rng_state_all(cuda_states)
    py = meta["rng"]["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    npy = meta["rng"]["numpy"]
    np.random.set_state((npy[0], np.asarray(npy[1], dtype=np.uint32), npy[2], npy[3], npy[4]))
    return int(meta["step"]), float(meta["seconds"])
