"""Audit one model on one split: rollouts under true, shuffled and random actions, branches, every metric."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from gedanken.audit.config import AuditConfig, MetricSet
from gedanken.audit.harness import ModelOutput, TruthSet, derangement, random_actions, rollout
from gedanken.audit.judge import Judged, judge_frames, judged_from_states
from gedanken.audit.objects import object_metrics, object_view
from gedanken.audit.physics import PhysicsTruth, physics_metrics
from gedanken.audit.pixels import mse, psnr, ssim
from gedanken.models.protocol import WorldModel
from gedanken.worlds.state import MASS, PRESENT, WORLD_SIZE, Shape, W
from gedanken.worlds.state import H as H_FIELD

log = logging.getLogger(__name__)

CTRL_EPS_POS = 0.1  # world units: the judge's resolution, regularises the controllability ratio
CTRL_EPS_MSE = 1.0  # uint8 units squared, the same for the pixel version


@dataclass
class Interventions:
    """The counterfactual inputs of a split, drawn once so that every model faces the same ones."""

    perm: np.ndarray  # (B,) derangement: episode i is rolled out under the actions of episode perm[i]
    random_actions: np.ndarray  # (B, Hz, A) uniform random actions (delta-PSNR)
    branch_episodes: np.ndarray  # (Bb,) episodes that are branched
    branch_actions: list[np.ndarray]  # per branch (Bb, Hz, A)
    branch_frames: list[np.ndarray]  # per branch (Bb, Hz, H, W, 3) the simulator's future
    branch_judged: list[Judged | None]  # per branch (Bb, 1 + Hz, K) judged simulator future


@dataclass
class TruthJudged:
    """The judge's reading of the true frames of a split, computed once and shared by every model."""

    judged: Judged | None  # (B, 1 + Hz, K) last context frame + future; None without a palette
    physics: PhysicsTruth | None
    present: np.ndarray | None  # (B, 1 + Hz, K)
    moving: np.ndarray | None  # (B, K) dynamic objects
    full_area: np.ndarray | None  # (B, K) unoccluded area of each object in pixels
    interventions: Interventions | None = None  # None for passive worlds


@dataclass
class SplitEvaluation:
    """Everything measured for one model on one split."""

    metrics: MetricSet
    clip_truth: np.ndarray  # (C, Hz, H, W, 3) uint8 true future of the clip episodes
    clip_pred: np.ndarray | None  # (C, Hz, H, W, 3) uint8 predicted future (None: model has no pixels)
    notes: list[str] = field(default_factory=list)


def judge_truth(truth: TruthSet, cfg: AuditConfig, seed: int = 0) -> TruthJudged:
    """Judge the true frames and draw the split's interventions (shuffles, random actions, branches)."""
    interventions = _interventions(truth, cfg, seed) if truth.controllable else None
    if truth.palette is None or truth.states is None:
        return TruthJudged(None, None, None, None, None, interventions)
    frames = np.concatenate([truth.context_frames[:, -1:], truth.frames], 1)  # (B, 1 + Hz, H, W, 3)
    judged = judge_frames(frames, truth.palette, cfg.judge)
    last = truth.states[:, 0]  # (B, K, F)
    present = truth.states[..., PRESENT] > 0
    moving = (last[..., MASS] > 0) & present.any(1)
    circle = np.array([s == Shape.CIRCLE.value for s in truth.shapes])[None, :]
    radius = np.where(circle, 0.5 * last[..., W], 0.5 * np.minimum(last[..., W], last[..., H_FIELD]))
    physics = PhysicsTruth(
        radius=radius.astype(np.float64),
        solid=moving,
        mass=np.where(moving, last[..., MASS], 0.0).astype(np.float64),
        contacts=truth.contacts,
        gravity=truth.gravity_per_episode(),
        fps=truth.fps,
        circle=np.broadcast_to(circle, radius.shape).copy(),
    )
    h, w = truth.frames.shape[2:4]
    px = (w / WORLD_SIZE) * (h / WORLD_SIZE)  # pixels per square world unit
    full_area = np.where(circle, np.pi / 4, 1.0) * last[..., W] * last[..., H_FIELD] * px  # (B, K)
    return TruthJudged(judged, physics, present, moving, full_area, interventions)


def _interventions(truth: TruthSet, cfg: AuditConfig, seed: int) -> Interventions:
    rng = np.random.default_rng(seed)
    perm = derangement(truth.n, rng)
    rand = random_actions(truth.action_spec, truth.actions.shape[:2], rng)
    n_b = min(cfg.branch_episodes, truth.n) if truth.simulator is not None and cfg.branches > 0 else 0
    idx = np.arange(n_b)
    acts, frames, judged = [], [], []
    last = truth.context_frames[idx, -1:]  # (Bb, 1, H, W, 3)
    for _ in range(cfg.branches if n_b else 0):
        a = random_actions(truth.action_spec, (n_b, truth.horizon), rng)
        assert truth.simulator is not None
        fut = truth.simulator.simulate(idx, a)
        acts.append(a)
        frames.append(fut.frames)
        judged.append(
            None
            if truth.palette is None
            else judge_frames(np.concatenate([last, fut.frames], 1), truth.palette, cfg.judge)
        )
    return Interventions(perm, rand, idx, acts, frames, judged)


def _judge_output(out: ModelOutput, truth: TruthSet, cfg: AuditConfig) -> Judged:
    """(B, 1 + Hz, K) judged prediction, the true last context frame prepended."""
    assert truth.palette is not None
    h, w = truth.frames.shape[2:4]
    if out.frames is not None:
        idx = np.arange(out.frames.shape[0])
        frames = np.concatenate([truth.context_frames[idx, -1:], out.frames], 1)
        return judge_frames(frames, truth.palette, cfg.judge)
    assert out.states is not None and truth.states is not None
    states = np.concatenate([truth.states[: out.states.shape[0], :1], out.states], 1)
    return judged_from_states(states, h, w)


def _pos_error(pred: Judged, true: Judged, moving: np.ndarray) -> float:
    """Mean position error (world units) over moving objects visible in both, over the horizon."""
    both = (pred.visible & true.visible & moving[:, None, :])[:, 1:]
    err = np.sqrt(((pred.xy_world() - true.xy_world()) ** 2).sum(-1))[:, 1:]
    return float(err[both].mean()) if both.any() else float("nan")


def _spread(frames: list[np.ndarray]) -> float:
    """Mean pixel MSE between every pair of branches."""
    return float(np.mean([mse(a, b).mean() for i, a in enumerate(frames) for b in frames[i + 1 :]]))


def evaluate_model(
    model: WorldModel, truth: TruthSet, tj: TruthJudged, cfg: AuditConfig, seed: int
) -> SplitEvaluation:
    """Roll ``model`` out on every episode of ``truth`` and measure it."""
    m = MetricSet()
    notes: list[str] = []
    out = rollout(model, truth, truth.actions, seed, cfg.batch_size)
    objects = tj.judged is not None
    p: np.ndarray | None = None  # (B, Hz) PSNR under the true actions

    if out.frames is not None:
        p = psnr(out.frames, truth.frames, cfg.psnr_cap)  # (B, Hz)
        s = ssim(out.frames, truth.frames)
        m.curves["psnr"], m.curves["ssim"] = p.mean(0), s.mean(0)
        m.scalars["psnr"], m.scalars["ssim"] = float(p.mean()), float(s.mean())
    else:
        notes.append("no decoded frames: pixel metrics skipped, objects read from the state head")

    pred_j: Judged | None = None
    if objects:
        assert tj.judged is not None and tj.present is not None and tj.moving is not None and tj.physics
        pred_j = _judge_output(out, truth, cfg)
        m.update(object_metrics(pred_j, tj.judged, tj.present, tj.moving, cfg, truth.fps, tj.full_area))
        pv, tv = object_view(pred_j, truth.fps), object_view(tj.judged, truth.fps)
        m.update(physics_metrics(pred_j, tj.judged, pv, tv, tj.physics, cfg))

    if tj.interventions is not None:
        _controllability(model, truth, tj, tj.interventions, out, p, pred_j, cfg, seed, m)
        if tj.interventions.branch_actions:
            _branches(model, truth, tj, tj.interventions, cfg, seed, m)
    else:
        notes.append("passive world: controllability and counterfactual branches do not apply")

    c = min(cfg.clip_episodes, truth.n)
    return SplitEvaluation(
        metrics=m,
        clip_truth=truth.frames[:c],
        clip_pred=None if out.frames is None else out.frames[:c],
        notes=notes,
    )


def _controllability(
    model: WorldModel,
    truth: TruthSet,
    tj: TruthJudged,
    iv: Interventions,
    out: ModelOutput,
    psnr_true: np.ndarray | None,
    pred_j: Judged | None,
    cfg: AuditConfig,
    seed: int,
    m: MetricSet,
) -> None:
    """Error under true vs shuffled actions (ratio) and Genie's delta-PSNR (true vs random actions)."""
    shuf = rollout(model, truth, truth.actions[iv.perm], seed, cfg.batch_size)
    if out.frames is not None and shuf.frames is not None:
        e_true, e_shuf = (
            float(mse(out.frames, truth.frames).mean()),
            float(mse(shuf.frames, truth.frames).mean()),
        )
        m.scalars["ctrl_ratio_mse"] = (e_shuf + CTRL_EPS_MSE) / (e_true + CTRL_EPS_MSE)
    if pred_j is not None and tj.judged is not None and tj.moving is not None:
        e_true = _pos_error(pred_j, tj.judged, tj.moving)
        e_shuf = _pos_error(_judge_output(shuf, truth, cfg), tj.judged, tj.moving)
        m.scalars["ctrl_pos_err_shuffled"] = e_shuf
        m.scalars["ctrl_ratio"] = (e_shuf + CTRL_EPS_POS) / (e_true + CTRL_EPS_POS)
        m.scalars["ctrl_gain"] = e_shuf - e_true
    if psnr_true is not None:
        rand = rollout(model, truth, iv.random_actions, seed, cfg.batch_size)
        assert rand.frames is not None
        d = psnr_true - psnr(rand.frames, truth.frames, cfg.psnr_cap)
        m.curves["delta_psnr"] = d.mean(0)
        m.scalars["delta_psnr"] = float(d.mean())


def _branches(
    model: WorldModel,
    truth: TruthSet,
    tj: TruthJudged,
    iv: Interventions,
    cfg: AuditConfig,
    seed: int,
    m: MetricSet,
) -> None:
    """K counterfactual action sequences from the same state, in the simulator and in the model."""
    idx = iv.branch_episodes
    last = truth.context_frames[idx, -1:]  # (Bb, 1, H, W, 3)
    mod_f, pos, ps = [], [], []
    for acts, sim_frames, true_j in zip(iv.branch_actions, iv.branch_frames, iv.branch_judged, strict=True):
        # One sampling seed for every branch: only the actions differ, so spread measures action control.
        pred = rollout(model, truth, acts, seed, cfg.batch_size, episodes=idx)
        if pred.frames is None:
            continue
        mod_f.append(pred.frames)
        ps.append(psnr(pred.frames, sim_frames, cfg.psnr_cap).mean(0))
        if true_j is not None and truth.palette is not None and tj.moving is not None:
            pred_j = judge_frames(np.concatenate([last, pred.frames], 1), truth.palette, cfg.judge)
            pos.append(_pos_error(pred_j, true_j, tj.moving[idx]))
    if ps:
        m.curves["branch_psnr"] = np.mean(ps, 0)
        m.scalars["branch_psnr"] = float(np.mean(ps))
    if pos and not np.isnan(pos).all():
        m.scalars["branch_pos_err"] = float(np.nanmean(pos))
    if len(mod_f) >= 2:
        sim_spread = _spread(iv.branch_frames)
        m.scalars["branch_spread_ratio"] = _spread(mod_f) / sim_spread if sim_spread > 0 else float("nan")
