"""Experiments: sweeps over grids of scenarios × replications, resumable, on any executor.

The Python API mirrors ``immodel sweep``::

    from immodel.experiments import load_sweep, run_sweep, collect_results

    sweep = load_sweep("loss-vs-transport.toml")     # validated up front
    frame = run_sweep(sweep, "out/", workers=8)        # or scheduler="tcp://host:8786"
    frame = collect_results("out/")                    # any time, also during a run

See :mod:`immodel.experiments.sweep` for the sweep file, the seeds and the result folder,
and :mod:`immodel.experiments.executors` for where tasks run. Names are imported lazily
so that importing this package pulls in neither pandas nor Dask.
"""

from __future__ import annotations

__all__ = [
    "Sweep",
    "SweepFailed",
    "Task",
    "collect_results",
    "load_sweep",
    "load_sweep_with",
    "run_sweep",
]


def __getattr__(name: str):
    if name in __all__:
        from immodel.experiments import sweep

        return getattr(sweep, name)
    raise AttributeError(f"module 'immodel.experiments' has no attribute {name!r}")
