"""``gedanken rollout``, ``gedanken generate`` and ``gedanken play``: run a trained model of any family."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console

from gedanken.cli_options import MAX_CANDIDATES, device_option, out_file_option, threads_option
from gedanken.models.actions import check_model_world, driving_actions
from gedanken.progress import progress_messages
from gedanken.train.cli import resolve_model_path

console = Console()
_err = Console(stderr=True)  # progress lines, so that stdout keeps only results

MAX_FRAMES = (
    10_000  # rollout / generate / play: longer requests are refused, not left to run silently for hours
)
MAX_CONTEXT = 256  # context frames a rollout may be given (the shipped models were trained on 4)
MAX_SAMPLER_STEPS = 1000  # sampler steps per frame (the shipped models use 4)


def _load(model: str, device: str, steps: int):  # noqa: ANN202
    from gedanken.models import load_checkpoint
    from gedanken.train.trainer import resolve_device

    m = load_checkpoint(resolve_model_path(model), device=resolve_device(device))
    if steps and not hasattr(m, "set_sampler"):
        raise typer.BadParameter(f"{model} has no sampler to give steps to", param_hint="--sampler-steps")
    if steps:
        import dataclasses

        m.set_sampler(dataclasses.replace(m.sampler.cfg, steps=steps))  # type: ignore[attr-defined]
    return m


def _sampler_steps_option() -> Any:  # noqa: ANN401 (typer's OptionInfo)
    return typer.Option(
        0, min=0, max=MAX_SAMPLER_STEPS, help="Override the sampler's steps per frame (0 = the model's)."
    )


def verify_option() -> Any:  # noqa: ANN401 (typer's OptionInfo)
    return typer.Option(
        0,
        "--verify",
        min=0,
        max=MAX_CANDIDATES,
        help="Best of up to N samples per frame, chosen by a solidity verifier: a frame whose objects overlap "
        "or pass a wall is sampled again and the least penetrating kept (diffusion and autoregressive models "
        "of flat-coloured worlds; 0 = the model's own sampler).",
    )


def _on_world(model: str, device: str, sampler_steps: int, world: str, verify: int = 0) -> tuple[Any, str]:
    """The loaded model and the world it runs on (``world``, else the one it was trained on), checked, with the
    solidity verifier when ``verify`` > 0."""
    from gedanken.models.verifier import use_verifier

    m = _load(model, device, sampler_steps)
    world = world or getattr(getattr(m, "card", None), "world", "") or "bounce"
    check_model_world(m, world, model)
    if verify:
        try:
            use_verifier(m, verify, world, label=model)
        except ValueError as e:
            raise typer.BadParameter(str(e), param_hint="--verify") from None
    return m, world


def _frame_progress(m: Any, say: Any, what: str, total: int) -> dict[str, Any]:  # noqa: ANN401
    """``rollout``'s ``on_frame`` keyword, saying ``what: i/total frames`` at most once a second and at the end, for
    a model whose rollout takes one (the diffusion and autoregressive families); else no keyword."""
    import inspect
    import time

    if "on_frame" not in inspect.signature(m.rollout).parameters:
        return {}
    last = [time.perf_counter()]

    def on_frame(i: int) -> None:
        now = time.perf_counter()
        if now - last[0] >= 1.0 or i == total:
            last[0] = now
            say(f"{what}: {i}/{total} frames")

    return {"on_frame": on_frame}


def _write(frames: np.ndarray, out: Path, fps: float) -> None:
    from gedanken.data.video import write_mp4

    write_mp4(frames, out, fps=fps)
    console.print(f"wrote {out} ({len(frames)} frames)")


def rollout_cmd(
    model: str = typer.Option(..., help="Checkpoint directory or shipped name (diffusion_bounce)."),
    world: str = typer.Option(
        "", help="World to take context frames and actions from (default: the model's)."
    ),
    split: str = typer.Option("test", help="Parameter split of the context episode."),
    seed: int = typer.Option(0, min=0, help="Episode seed (context, actions) and sampling seed."),
    steps: int = typer.Option(64, min=1, max=MAX_FRAMES, help="Frames to predict."),
    context: int = typer.Option(4, min=1, max=MAX_CONTEXT, help="Context frames."),
    sampler_steps: int = _sampler_steps_option(),
    verify: int = verify_option(),
    out: Path = typer.Option(
        Path("rollout.mp4"), callback=out_file_option, help="mp4 to write (truth | model side by side)."
    ),
    device: str = typer.Option("auto", callback=device_option, help="auto | cpu | cuda | cuda:N."),
    threads: int = threads_option(),
) -> None:
    """Roll a model out from a recorded context under the recorded actions; writes truth | model video."""
    import torch

    from gedanken.worlds.record import record_episode

    m, world = _on_world(model, device, sampler_steps, world, verify)
    ep = record_episode(world, split, seed, context + steps)
    f = torch.from_numpy(ep.frames[None, :context])
    a = torch.from_numpy(ep.actions[None])
    with torch.inference_mode():
        ctx = m.observe(f, a[:, :context], [ep.caption] if ep.caption else None)
        if m.step(ctx, a[:, context - 1])[1].frame is None:  # one step says it, before the whole rollout
            raise typer.BadParameter(
                f"model {m.name!r} predicts latents, not frames: roll out a diffusion or autoregressive model "
                "(`gedanken audit` reads this one's object states through its probe)"
            )
    what = f"rolling {m.name} out"
    with progress_messages(_err, f"{what} for {steps} frames") as say, torch.inference_mode():
        roll = m.rollout(
            ctx, a[:, context - 1 : context - 1 + steps], seed=seed, **_frame_progress(m, say, what, steps)
        )
    assert roll.frames is not None
    pred = roll.frames[0].cpu().numpy()
    truth = ep.frames[context : context + len(pred)]
    gap = np.full((len(pred), pred.shape[1], 2, 3), 255, np.uint8)
    _write(np.concatenate([truth, gap, pred], axis=2), out, ep.meta.fps)


def generate_cmd(
    model: str = typer.Option(..., help="Checkpoint directory or shipped name."),
    prompt: str = typer.Option(..., help="What should happen, e.g. 'two heavy balls collide in the middle'."),
    steps: int = typer.Option(32, min=1, max=MAX_FRAMES, help="Frames to generate."),
    seed: int = typer.Option(0, min=0, help="Sampling seed."),
    sampler_steps: int = _sampler_steps_option(),
    text_guidance: float = typer.Option(0.0, help="Classifier-free guidance on text (0 = the model's)."),
    out: Path = typer.Option(Path("generated.mp4"), callback=out_file_option, help="mp4 to write."),
    device: str = typer.Option("auto", callback=device_option, help="auto | cpu | cuda | cuda:N."),
    threads: int = threads_option(),
) -> None:
    """Generate a clip from a text prompt alone (no context frames, no actions)."""
    import dataclasses

    import torch

    if not prompt.strip():
        raise typer.BadParameter("--prompt is empty: say what should happen")
    m = _load(model, device, sampler_steps)
    if not hasattr(m, "start"):
        raise typer.BadParameter(f"model {m.name!r} cannot generate from text alone")
    if text_guidance:
        m.set_sampler(dataclasses.replace(m.sampler.cfg, text_guidance=text_guidance))  # type: ignore[attr-defined]
    with progress_messages(_err, f"generating {steps} frames") as say, torch.inference_mode():
        more = _frame_progress(m, say, "generating", steps)
        roll = m.rollout(m.start(1, [prompt], seed=seed), None, seed=seed, horizon=steps, **more)  # type: ignore[attr-defined]
    _write(roll.frames[0].cpu().numpy(), out, 15.0)


def play_cmd(
    model: str = typer.Option(..., help="Checkpoint directory or shipped name."),
    world: str = typer.Option("", help="World for the starting context (default: the model's)."),
    frames: int = typer.Option(64, min=1, max=MAX_FRAMES, help="Frames to play with random actions."),
    seed: int = typer.Option(
        0, min=0, help="Seed of the starting episode, the random actions and the sampler."
    ),
    sampler_steps: int = _sampler_steps_option(),
    verify: int = verify_option(),
    out: Path = typer.Option(None, callback=out_file_option, help="Optional mp4 of the session."),
    device: str = typer.Option("auto", callback=device_option, help="auto | cpu | cuda | cuda:N."),
    threads: int = threads_option(),
) -> None:
    """Drive the model frame by frame with random actions and report its frames per second."""
    from gedanken.models.player import NoFramesError, Player

    m, world = _on_world(model, device, sampler_steps, world, verify)
    player = Player.from_world(m, world, seed=seed)
    rng = np.random.default_rng(seed)
    dim, classes = driving_actions(m)

    def random_action() -> np.ndarray:  # a random index of a discrete action space, else uniform in [-1, 1]
        if classes:
            return rng.integers(0, classes, size=1).astype(np.float32)
        return rng.uniform(-1, 1, size=dim).astype(np.float32)

    try:
        shots = [player.step(random_action()) for _ in range(frames)]
    except NoFramesError:  # a model that predicts latents only (JEPA): nothing to show
        raise typer.BadParameter(
            f"model {m.name!r} predicts latents, not frames: play a diffusion or autoregressive model "
            "(in Python, Player.step still advances it and player.last.state holds its probe's object states)"
        ) from None
    warm = player.stats.per_frame[4:] or player.stats.per_frame
    # one JSON line on stdout, never wrapped (rich would wrap it at the terminal's width)
    typer.echo(json.dumps({"frames": frames, "fps": player.fps, "fps_after_warmup": len(warm) / sum(warm)}))
    if out is not None:
        _write(np.stack(shots), out, 15.0)


def register(app: typer.Typer) -> None:
    """Add ``rollout``, ``generate`` and ``play`` to the ``gedanken`` command."""
    app.command("rollout")(rollout_cmd)
    app.command("generate")(generate_cmd)
    app.command("play")(play_cmd)
