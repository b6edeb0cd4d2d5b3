"""The nightly pipeline frame: stage registry, run orchestration, lock, chunking, bulk I/O.

Apps add stages from their `stages.py` with `register_stage(Stage(...))`; see registry.py.
"""

from brokercrm.nightly.registry import Stage, StageContext, StageResult, register_stage

__all__ = ["Stage", "StageContext", "StageResult", "register_stage"]
