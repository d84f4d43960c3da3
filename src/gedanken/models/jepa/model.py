"""The JEPA world model: tubelet encoder + action-conditioned latent predictor + linear state probe (+ decoder).

It never predicts pixels for planning. Training is staged (see :class:`Stage`), each stage one call of the
shared trainer with ``loss(batch)``:

1. ``ENCODER``: self-supervised masked prediction in representation space on unlabeled clips, kept from
   collapsing by SIGReg or an EMA target (:class:`~gedanken.models.jepa.config.AntiCollapse`);
2. ``PREDICTOR``: the encoder frozen, the predictor learns ``z_{t+1}`` from ``(z_{<=t}, a_{<=t})`` on latent
   windows (teacher-forced and autoregressive losses, V-JEPA 2-AC);
3. the probe is fitted in closed form; ``DECODER`` optionally trains a pixel decoder on frozen latents.

As a :class:`~gedanken.models.protocol.WorldModel`: ``observe`` encodes frames, ``step``/``rollout`` advance
latents; predictions carry ``latent``, ``state`` (probe) and ``frame`` only when :attr:`decode` is on and a
decoder was trained.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields, replace
from enum import Enum

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gedanken.data.batch import Batch
from gedanken.models.actions import check_actions
from gedanken.models.jepa.config import AntiCollapse, EncoderKind, JepaConfig
from gedanken.models.jepa.decoder import PixelDecoder
from gedanken.models.jepa.encoder import (
    MaskedPredictor,
    TubeletEncoder,
    frames_to_float,
    gather_tokens,
    query_positions,
)
from gedanken.models.jepa.keypoints import (
    KeypointEncoder,
    NextLatentPredictor,
    correlation_penalty,
    keypoint_pretrain_loss,
    variance_hinge,
)
from gedanken.models.jepa.predictor import ActionPredictor, PredictorState
from gedanken.models.jepa.probe import LinearProbe
from gedanken.models.jepa.sigreg import sigreg
from gedanken.models.protocol import ModelCard, Prediction, Rollout


class Stage(str, Enum):
    """Which part :meth:`JepaWorldModel.loss` trains."""

    ENCODER = "encoder"
    PREDICTOR = "predictor"
    DECODER = "decoder"


@dataclass
class LatentBatch:
    """Windows of frozen frame latents (stages 2 and 3), the cheap stand-in for :class:`Batch` once encoded."""

    latents: Tensor  # (B, T, d_z)
    actions: Tensor  # (B, T, A) raw actions (as stored in episodes)
    frames: Tensor | None = None  # (B, T, H, W, 3) uint8, only for the decoder stage

    def to(self, device: torch.device | str) -> LatentBatch:
        return replace(
            self,
            **{
                f.name: getattr(self, f.name).to(device)
                for f in fields(self)
                if isinstance(getattr(self, f.name), Tensor)
            },
        )

    def __len__(self) -> int:
        return int(self.latents.shape[0])


@dataclass
class JepaContext:
    """Opaque context of :meth:`JepaWorldModel.observe`."""

    state: PredictorState
    latents: Tensor  # (B, T, d_z) latents of the observed frames


class JepaWorldModel(nn.Module):
    """See the module docstring."""

    family = "jepa"

    def __init__(self, cfg: JepaConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.name = "jepa"
        self.card = ModelCard(name="jepa", family="jepa")
        enc = cfg.encoder
        self.encoder: TubeletEncoder | KeypointEncoder
        self.ssl_predictor: MaskedPredictor | NextLatentPredictor
        if enc.kind is EncoderKind.KEYPOINTS:
            self.encoder = KeypointEncoder(enc)
            self.ssl_predictor = NextLatentPredictor(enc.latent_dim, enc.pred_hidden)
        else:
            self.encoder = TubeletEncoder(enc)
            self.ssl_predictor = MaskedPredictor(enc)
        self.target: TubeletEncoder | KeypointEncoder | None = None
        if enc.anti_collapse is AntiCollapse.EMA:
            self.target = copy.deepcopy(self.encoder).requires_grad_(False)
        kp = enc.keypoints if enc.kind is EncoderKind.KEYPOINTS else 0
        self.predictor = ActionPredictor(cfg.predictor, enc.latent_dim, cfg.action_dim, keypoints=kp)
        self.probe = LinearProbe(enc.latent_dim, cfg.max_objects)
        self.decoder = PixelDecoder(cfg.decoder, enc)
        self.register_buffer("action_low", torch.tensor(cfg.action_low, dtype=torch.float32))
        self.register_buffer("action_high", torch.tensor(cfg.action_high, dtype=torch.float32))
        self.register_buffer("ema_updates", torch.zeros((), dtype=torch.int64))
        self.stage = Stage.ENCODER
        self.ema_total_steps = 1  # set by the training recipe: EMA momentum reaches its final value there
        self.decode = False  # decode pictures in step/rollout (needs a trained decoder)
        self.probe_metric: Tensor | None = None  # (d_z, K * 4), set by the recipe for probe_weight > 0

    # ------------------------------------------------------------------------------------------ training

    def set_stage(self, stage: Stage) -> None:
        """Select what :meth:`loss` trains; only that part keeps ``requires_grad``."""
        self.stage = stage
        self.requires_grad_(False)
        parts: dict[Stage, list[nn.Module]] = {
            Stage.ENCODER: [self.encoder, self.ssl_predictor],
            Stage.PREDICTOR: [self.predictor],
            Stage.DECODER: [self.decoder],
        }
        for m in parts[stage]:
            m.requires_grad_(True)

    def normalise_actions(self, actions: Tensor) -> Tensor:
        """Raw actions ``(..., A)`` -> ``[-1, 1]`` per dimension."""
        check_actions(actions, self.cfg.action_dim, 0)
        span = (self.action_high - self.action_low).clamp_min(1e-6)
        return (actions.float() - self.action_low) / span * 2.0 - 1.0

    def loss(self, batch: Batch | LatentBatch) -> tuple[Tensor, dict[str, float]]:
        """The loss of the current :attr:`stage` on one batch (``Batch`` for ENCODER, ``LatentBatch`` after)."""
        if self.stage is Stage.ENCODER:
            if not isinstance(batch, Batch):
                raise TypeError(f"the encoder stage trains on frame Batches, got {type(batch).__name__}")
            return self._encoder_loss(batch.frames)
        if not isinstance(batch, LatentBatch):
            raise TypeError(
                f"the {self.stage.value} stage trains on LatentBatches, got {type(batch).__name__}"
            )
        if self.stage is Stage.PREDICTOR:
            return self._predictor_loss(batch)
        return self._decoder_loss(batch)

    @torch.no_grad()
    def _ema_update(self) -> None:
        assert self.target is not None
        m0, m1 = self.cfg.encoder.ema_momentum
        m = m0 + (m1 - m0) * min(1.0, float(self.ema_updates) / max(1, self.ema_total_steps))
        for pt, po in zip(self.target.parameters(), self.encoder.parameters(), strict=True):
            pt.lerp_(po, 1.0 - m)
        self.ema_updates += 1

    def _encoder_loss(self, frames: Tensor) -> tuple[Tensor, dict[str, float]]:
        enc = self.cfg.encoder
        if frames.shape[1] < enc.clip_frames:
            raise ValueError(f"encoder clips need {enc.clip_frames} frames, got {frames.shape[1]}")
        if self.target is not None and self.training:
            self._ema_update()  # applies the previous optimizer step to the target (the trainer has no hook)
        if isinstance(self.encoder, KeypointEncoder):
            assert isinstance(self.ssl_predictor, NextLatentPredictor)
            assert self.target is None or isinstance(self.target, KeypointEncoder)
            loss, logs, flat = keypoint_pretrain_loss(
                self.encoder,
                self.ssl_predictor,
                frames,
                self.target,
                vicreg=enc.anti_collapse is AntiCollapse.VICREG,
            )
            return self._sigreg_term(loss, logs, flat)
        assert isinstance(self.ssl_predictor, MaskedPredictor)
        k, nt = enc.tubelet, enc.predict_tubelets
        b = frames.shape[0]
        z = self.encoder(frames[:, :k])  # (B, S, c): latent of the first tubelet only
        n_tok = enc.grid * enc.grid
        query = query_positions(b, nt * n_tok, enc.mask_ratio, frames.device)  # (B, n)
        pred = self.ssl_predictor(z, query)  # (B, n, D)
        with torch.no_grad():
            teacher = self.target if self.target is not None else self.encoder
            tubes = frames[:, : k * nt].unflatten(1, (nt, k)).flatten(0, 1)  # (B * nt, k, H, W, 3)
            full = teacher.features(teacher.tokens(tubes)).view(b, nt * n_tok, enc.dim)  # each tubelet alone
            target = F.layer_norm(gather_tokens(full, query), (enc.dim,))  # V-JEPA: normalised targets
        loss = F.l1_loss(pred, target)
        logs: dict[str, float] = {"pred": float(loss.detach())}
        flat = z.reshape(b, -1)  # (B, S * c)
        if enc.anti_collapse is AntiCollapse.VICREG:
            var, cov = variance_hinge(flat, enc.var_target), correlation_penalty(flat)
            loss = loss + enc.var_weight * var + enc.cov_weight * cov
            logs |= {"var": float(var.detach()), "cov": float(cov.detach())}
        return self._sigreg_term(loss, logs, flat)

    def _sigreg_term(
        self, loss: Tensor, logs: dict[str, float], flat: Tensor
    ) -> tuple[Tensor, dict[str, float]]:
        """Adds SIGReg on the flat latents ``(B, d)`` when it is the anti-collapse choice; logs their std."""
        enc = self.cfg.encoder
        if enc.anti_collapse is AntiCollapse.SIGREG:
            reg = sigreg(flat, enc.sigreg_slices)
            loss = loss + enc.sigreg_weight * reg
            logs["sigreg"] = float(reg.detach())
        logs["z_std"] = float(flat.detach().std(0).mean())
        return loss, logs

    def _predictor_loss(self, batch: LatentBatch) -> tuple[Tensor, dict[str, float]]:
        pc = self.cfg.predictor
        z, a = batch.latents, self.normalise_actions(batch.actions)  # (B, T, d), (B, T, A)
        if z.shape[1] < 2:
            raise ValueError("predictor windows need at least 2 frames")
        target = z[:, 1:]
        dist = F.l1_loss if pc.loss == "l1" else F.mse_loss
        teacher = self.predictor(z[:, :-1], a[:, :-1])
        roll = self.predictor.rollout(self.predictor.start(z[:, :1], None), a[:, :-1])  # (B, T-1, d)
        tf, ro = dist(teacher, target), dist(roll, target)
        copy_last = F.l1_loss(z[:, :1].expand_as(target), target)
        loss = pc.teacher_weight * tf + pc.rollout_weight * ro
        logs = {"teacher": float(tf.detach()), "rollout": float(ro.detach()), "copy_first": float(copy_last)}
        if pc.probe_weight > 0:
            if self.probe_metric is None:
                raise ValueError("probe_weight > 0 needs probe_metric: fit the probe before the predictor")
            metric = self.probe_metric.to(z.device)
            probe = ((teacher - target) @ metric).pow(2).mean() * pc.teacher_weight
            probe = probe + ((roll - target) @ metric).pow(2).mean() * pc.rollout_weight
            loss = loss + pc.probe_weight * probe
            logs["probe"] = float(probe.detach())
        return loss, logs

    def _decoder_loss(self, batch: LatentBatch) -> tuple[Tensor, dict[str, float]]:
        if batch.frames is None:
            raise ValueError("the decoder stage needs LatentBatch.frames")
        z = batch.latents.flatten(0, 1)  # (B*T, d)
        target = frames_to_float(batch.frames.flatten(0, 1))  # (B*T, 3, H, W)
        loss = F.mse_loss(self.decoder(z), target)
        return loss, {"mse": float(loss.detach())}

    # ------------------------------------------------------------------------------------------ protocol

    @property
    def device(self) -> torch.device:
        return self.action_low.device

    @torch.no_grad()
    def encode(self, frames: Tensor) -> Tensor:
        """Frame latents ``(B, T, d_z)`` of uint8 frames ``(B, T, H, W, 3)`` (a single frame is paired with itself)."""
        if frames.ndim != 5 or frames.shape[-1] != 3:
            raise ValueError(f"frames must be (B, T, H, W, 3) uint8, got {tuple(frames.shape)}")
        return self.encoder.encode_frames(frames.to(self.device))

    @torch.no_grad()
    def observe(
        self, frames: Tensor, actions: Tensor | None = None, text: list[str] | None = None
    ) -> JepaContext:
        """Encode context frames ``(B, T, H, W, 3)`` and the actions between them ``(B, T, A)``.

        Without actions, a context of several frames is read as if no-ops (zero actions) had been taken.
        """
        z = self.encode(frames)  # (B, T, d)
        if actions is None and z.shape[1] > 1:
            actions = torch.zeros(*z.shape[:2], self.cfg.action_dim, device=self.device)
        a = None if actions is None else self.normalise_actions(actions.to(self.device))
        return JepaContext(self.predictor.start(z, a), z)

    def repeat_context(self, ctx: JepaContext, n: int) -> JepaContext:
        """Broadcast a context observed with batch 1 to ``n`` rollouts (a view; used by planners)."""
        return JepaContext(ctx.state.repeat(n), ctx.latents.expand(n, -1, -1))

    def _readouts(self, z: Tensor) -> tuple[Tensor | None, Tensor | None]:
        states = self.probe(z) if bool(self.probe.fitted) else None
        frames = self.decoder.pictures(z) if self.decode and bool(self.decoder.fitted) else None
        return frames, states

    @torch.no_grad()
    def step(self, ctx: JepaContext, action: Tensor) -> tuple[JepaContext, Prediction]:
        """Advance one frame under ``action`` ``(B, A)``."""
        state, z = self.predictor.step(ctx.state, self.normalise_actions(action.to(self.device)))
        frame, st = self._readouts(z)
        return JepaContext(state, ctx.latents), Prediction(frame=frame, latent=z, state=st)

    @torch.no_grad()
    def rollout(self, ctx: JepaContext, actions: Tensor, *, seed: int = 0) -> Rollout:
        """``H`` latents under ``(B, H, A)`` actions (deterministic: ``seed`` is accepted and unused)."""
        if actions.ndim != 3:
            raise ValueError(f"actions must be (B, H, A), got {tuple(actions.shape)}")
        z = self.predictor.rollout(ctx.state, self.normalise_actions(actions.to(self.device)))  # (B, H, d)
        frames, states = self._readouts(z)
        return Rollout(frames=frames, latents=z, states=states)


def build(model_config: dict) -> JepaWorldModel:
    """Registry builder: checkpoint ``model_config`` JSON -> a fresh (untrained) model."""
    from gedanken.models.checkpoint import config_from_json

    return JepaWorldModel(config_from_json(JepaConfig, model_config))
