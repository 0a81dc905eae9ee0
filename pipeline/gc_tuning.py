"""Garbage-collector settings for a long-running engine."""

from __future__ import annotations

import gc


def tune_garbage_collector() -> None:
    """Move what start-up built (modules, config, compiled SQL) out of the collector's view and
    collect the young generation less often. The pipeline makes many short-lived dicts; with
    the default thresholds, collection took about 15% of the engine's time (measured with
    py-spy on ``bench/pipeline_throughput.py``). Call once, after start-up."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
