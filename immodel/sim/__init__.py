"""immodel.sim — the SimPy layer: the protocol core wired to time, loss, load and faults.

* :mod:`~immodel.sim.rng` — named random streams from one SeedSequence;
* :mod:`~immodel.sim.network` — per-direction links: latency, loss, bursts, bytes;
* :mod:`~immodel.sim.stage` — server stages as multi-server FIFO queues;
* :mod:`~immodel.sim.world` — clients and transports, access layer, server nodes;
* :mod:`~immodel.sim.faults` — the scenario's fault schedule;
* :mod:`~immodel.sim.records` — flat records that become DataFrames;
* :mod:`~immodel.sim.model` — :func:`run` and :class:`Result`.
"""
