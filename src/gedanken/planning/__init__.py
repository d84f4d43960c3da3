"""Planning with any world model: CEM and MPPI against the protocol, goal objectives, the simulator ceiling."""

from gedanken.planning.base import ActionBounds, Plan, shared_context
from gedanken.planning.cem import CEMConfig, CEMPlanner
from gedanken.planning.mppi import MPPIConfig, MPPIPlanner
from gedanken.planning.objectives import (
    Distance,
    ImageGoal,
    LatentGoal,
    Objective,
    PlanningError,
    StateGoal,
    SumObjective,
)
from gedanken.planning.simulator import RandomPlanner, SimulatorModel

__all__ = [
    "ActionBounds",
    "CEMConfig",
    "CEMPlanner",
    "Distance",
    "ImageGoal",
    "LatentGoal",
    "MPPIConfig",
    "MPPIPlanner",
    "Objective",
    "Plan",
    "PlanningError",
    "RandomPlanner",
    "SimulatorModel",
    "StateGoal",
    "SumObjective",
    "shared_context",
]
