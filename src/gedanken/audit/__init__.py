"""The audit: any world model that speaks the protocol, measured as a simulator against exact ground truth.

>>> from gedanken.audit import run_audit, write_report
>>> result = run_audit(["constant_velocity"], "bounce", ["test"], episodes=4, horizon=8, baselines=True)
>>> write_report(result, "reports/bounce")  # doctest: +SKIP

Pieces: :mod:`~gedanken.audit.judge` (objects from frames), :mod:`~gedanken.audit.harness` (held-out
truth, branch simulator, rollouts), :mod:`~gedanken.audit.objects` / :mod:`~gedanken.audit.physics` /
:mod:`~gedanken.audit.pixels` (metrics), :mod:`~gedanken.audit.baselines`, :mod:`~gedanken.audit.report`.
"""

from gedanken.audit.baselines import ConstantVelocity, CopyLastFrame, GroundTruth, NoiseFloor
from gedanken.audit.config import AuditConfig, MetricSet
from gedanken.audit.judge import JudgeConfig, Judged, judge_frames
from gedanken.audit.registry import BASELINES, ModelSpecError, load_model
from gedanken.audit.report import write_report
from gedanken.audit.run import AuditResult, ModelAudit, run_audit

__all__ = [
    "BASELINES",
    "AuditConfig",
    "AuditResult",
    "ConstantVelocity",
    "CopyLastFrame",
    "GroundTruth",
    "JudgeConfig",
    "Judged",
    "MetricSet",
    "ModelAudit",
    "ModelSpecError",
    "NoiseFloor",
    "judge_frames",
    "load_model",
    "run_audit",
    "write_report",
]
