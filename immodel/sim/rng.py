"""Named random streams: one ``SeedSequence`` per run, one stream per concern.

Every random draw of a run comes from a stream named for what it decides (``uplink``,
``downlink``, ``latency``, ``workload``, ``presence``, ``service``, ``faults``,
``phase``, ``admission``). Each stream is a child of the run's root
``numpy.random.SeedSequence`` keyed by a stable hash of its name (CRC-32, not Python's
salted ``hash``), so adding a stream or changing how much one part draws never
reshuffles the others, and the same seed gives the same draws under any
``PYTHONHASHSEED``.

Draws are buffered in blocks: a simulation asks for one number at a time, and numpy's
per-call overhead would otherwise dominate. Buffering does not change the sequence.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

_BLOCK = 4096


def stream_seed(root: np.random.SeedSequence, name: str) -> np.random.SeedSequence:
    """The child seed sequence of ``root`` for stream ``name``."""
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.SeedSequence(entropy=root.entropy, spawn_key=(*root.spawn_key, key))


class Stream:
    """A buffered random stream: uniforms, unit exponentials and standard normals.

    Each kind of draw is read from a block of ``_BLOCK`` numbers drawn at once; the next
    block is drawn when one runs out (an iterator's ``StopIteration``: no length check or
    index on the path taken by every other draw).
    """

    __slots__ = ("_gen", "_next_e", "_next_n", "_next_u", "name")

    def __init__(self, root: np.random.SeedSequence, name: str) -> None:
        self.name = name
        self._gen = np.random.Generator(np.random.PCG64(stream_seed(root, name)))
        empty = iter(()).__next__
        self._next_u = self._next_e = self._next_n = empty

    @property
    def generator(self) -> np.random.Generator:
        """The underlying generator, for bulk draws made once at set-up."""
        return self._gen

    def uniform(self) -> float:
        """A uniform draw in [0, 1)."""
        try:
            return self._next_u()
        except StopIteration:
            self._next_u = iter(self._gen.random(_BLOCK).tolist()).__next__
            return self._next_u()

    def exponential(self, mean: float) -> float:
        """An exponential draw with the given mean."""
        try:
            return self._next_e() * mean
        except StopIteration:
            self._next_e = iter(self._gen.standard_exponential(_BLOCK).tolist()).__next__
            return self._next_e() * mean

    def normal(self) -> float:
        """A standard normal draw."""
        try:
            return self._next_n()
        except StopIteration:
            self._next_n = iter(self._gen.standard_normal(_BLOCK).tolist()).__next__
            return self._next_n()

    def scaled_exponential(self, mean: float) -> Callable[[float], float]:
        """``draw(scale=1.0)``: ``exponential(mean) * scale``, the same number from the same
        draw, in one call instead of two (a stage's service time is drawn for every job)."""

        def draw(scale: float = 1.0) -> float:
            try:
                return self._next_e() * mean * scale
            except StopIteration:
                return self.exponential(mean) * scale

        return draw

    def below(self, n: int) -> int:
        """A uniform integer in [0, n)."""
        return min(int(self.uniform() * n), n - 1)


class Streams:
    """All named streams of one run, created on first use from one root seed."""

    def __init__(self, seed: int) -> None:
        self.root = np.random.SeedSequence(seed)
        self._streams: dict[str, Stream] = {}

    def __getitem__(self, name: str) -> Stream:
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = Stream(self.root, name)
        return stream
