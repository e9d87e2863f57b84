"""immodel — a discrete-event simulation and executable reference model of IM delivery.

Layers, top to bottom (data flows down, records flow up one way):

* :mod:`immodel.protocol` — the sans-IO reference model of the delivery protocol;
* :mod:`immodel.sim` — SimPy wiring: network, access tier, logic tier, clients;
* :mod:`immodel.analysis` — summaries, confidence intervals, plots, the delivery checker;
* :mod:`immodel.experiments` — sweeps on an executor, resumable results, the demo.

The entry points most users need are :class:`Scenario` and :func:`run`;
:func:`load_run` reads back a run saved with ``immodel run --out DIR``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["DrainWarning", "Result", "Scenario", "__version__", "load_run", "run"]


def __getattr__(name: str):
    # Lazy so that `import immodel.protocol` never pulls in SimPy, pandas or numpy.
    if name == "Scenario":
        from immodel.scenario import Scenario

        return Scenario
    if name == "DrainWarning":
        from immodel.errors import DrainWarning

        return DrainWarning
    if name in ("run", "Result", "load_run"):
        from immodel.sim import model

        return getattr(model, name)
    raise AttributeError(f"module 'immodel' has no attribute {name!r}")
