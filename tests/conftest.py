"""Suite-wide collection order: the longest tests first.

pytest-xdist hands tests to its workers in collection order, so a test of a minute or
more collected near the end runs alone while the other worker has nothing left to do.
Tests marked ``slow`` are moved to the front (a stable sort: the rest keep their order).
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
