"""The fault proxy of ``immodel real`` on its own, in front of an echo server: latency per
direction, byte order under random latency, partitions per user, resets, and a node that
is down. Two proxy processes serve the module (one with a constant latency, one with a
random one); every wait has a timeout."""

from __future__ import annotations

import asyncio
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from immodel.real.proxy import address_user, user_address

pytestmark = pytest.mark.timeout(60)

WAIT_S = 10.0  # the longest any single step may take
ROOT = Path(__file__).resolve().parents[2]


def test_user_addresses_round_trip_and_other_addresses_name_nobody():
    for uid in (0, 1, 255, 256, 1999, 65535):
        assert address_user(user_address(uid)) == uid
    assert address_user("127.0.0.1") is None
    assert address_user("10.1.0.3") is None


class ProxyProcess:
    """A proxy process for one access node; ``command`` waits for its ``OK``."""

    def __init__(self, folder: Path, latency_ms) -> None:
        cfg = {
            "dir": str(folder),
            "scenario": {"network.latency_ms": latency_ms, "seed": 7},
            "access_ports": [None],
        }
        config = folder / "config.json"
        config.write_text(json.dumps(cfg))
        path = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
        env = {**os.environ, "PYTHONPATH": path}
        args = [sys.executable, "-m", "immodel.real.proxy", str(config), "0"]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True
        )
        line = self._line().split()
        assert line[0] == "READY" and len(line) == 3  # a TLS and an HTTPS port per node
        self.port = int(line[1])

    def _line(self) -> str:
        ready, _, _ = select.select([self.proc.stdout], [], [], WAIT_S)
        assert ready, "the proxy did not answer"
        return self.proc.stdout.readline()

    def command(self, cmd: dict) -> None:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        assert self._line().split() == ["OK", cmd["op"]]

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(WAIT_S)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    """Constant 50 ms each way."""
    p = ProxyProcess(tmp_path_factory.mktemp("proxy-constant"), 50)
    yield p
    p.close()


@pytest.fixture(scope="module")
def random_proxy(tmp_path_factory):
    """Exponential latency, mean 20 ms each way."""
    p = ProxyProcess(tmp_path_factory.mktemp("proxy-random"), {"dist": "exponential", "mean": 20.0})
    yield p
    p.close()


class Echo:
    """An echo server standing in for an access node; records how each connection ended."""

    def __init__(self) -> None:
        self.ends: list[str] = []

    async def handle(self, reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
            self.ends.append("eof")
        except ConnectionResetError:
            self.ends.append("reset")
        writer.close()

    async def start(self, proxy: ProxyProcess):
        """Listen, and make the proxy's node 0 this server."""
        server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        await asyncio.to_thread(proxy.command, {"op": "upstream", "node": 0, "ports": [port, port]})
        return server


async def connect(port: int, uid: int):
    return await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(user_address(uid), 0)), WAIT_S
    )


async def round_trip_s(reader, writer, payload: bytes = b"ping") -> float:
    start = time.monotonic()
    writer.write(payload)
    got = await asyncio.wait_for(reader.readexactly(len(payload)), WAIT_S)
    assert got == payload
    return time.monotonic() - start


def test_each_direction_gets_the_scenarios_latency_once(proxy):
    async def main():
        echo = Echo()
        async with await echo.start(proxy):
            reader, writer = await connect(proxy.port, 1)
            trips = [await round_trip_s(reader, writer) for _ in range(5)]
            writer.close()
        return trips

    trips = asyncio.run(main())
    # 50 ms each way: never less than 100 ms; a delay applied twice per direction would
    # make every trip ≥ 200 ms, so the fastest of five must stay below that
    assert min(trips) >= 0.100
    assert min(trips) < 0.200


def test_random_latency_never_reorders_the_byte_stream(random_proxy):
    # exponential draws (mean 20 ms) differ by more than the 1 ms between chunks, so a
    # proxy that released each chunk after its own draw would reorder them
    async def main():
        echo = Echo()
        async with await echo.start(random_proxy):
            reader, writer = await connect(random_proxy.port, 2)
            sent = b""
            for i in range(200):
                chunk = f"<{i}>".encode()
                sent += chunk
                writer.write(chunk)
                await writer.drain()
                await asyncio.sleep(0.001)
            got = await asyncio.wait_for(reader.readexactly(len(sent)), WAIT_S)
            writer.close()
        return sent, got

    sent, got = asyncio.run(main())
    assert got == sent


def test_a_partition_holds_only_the_chosen_users_bytes_until_it_heals(proxy):
    async def main():
        echo = Echo()
        async with await echo.start(proxy):
            cut_r, cut_w = await connect(proxy.port, 3)
            free_r, free_w = await connect(proxy.port, 4)
            await round_trip_s(cut_r, cut_w)  # both connections are up
            heal = time.monotonic() + 1.0
            command = {"op": "partition", "users": [3], "until": heal, "direction": "both"}
            await asyncio.to_thread(proxy.command, command)
            cut_w.write(b"held")
            free_trip = await round_trip_s(free_r, free_w)
            got = await asyncio.wait_for(cut_r.readexactly(4), WAIT_S)
            arrived = time.monotonic()
            cut_w.close()
            free_w.close()
        return heal, arrived, got, free_trip

    heal, arrived, got, free_trip = asyncio.run(main())
    assert got == b"held"  # held, not dropped
    assert arrived >= heal  # not before the heal
    assert free_trip < 0.9  # the other user's bytes were not held (100 ms + scheduling)


def test_a_reset_resets_the_users_connection_at_both_ends(proxy):
    async def main():
        echo = Echo()
        async with await echo.start(proxy):
            reader, writer = await connect(proxy.port, 5)
            other_r, other_w = await connect(proxy.port, 6)
            await round_trip_s(reader, writer)
            await asyncio.to_thread(proxy.command, {"op": "reset", "users": [5]})
            with pytest.raises(ConnectionResetError):
                await asyncio.wait_for(reader.read(10), WAIT_S)
            for _ in range(100):  # the echo server's side ends within a moment
                if echo.ends:
                    break
                await asyncio.sleep(0.05)
            ends = list(echo.ends)
            await round_trip_s(other_r, other_w)  # another user's connection is untouched
            other_w.close()
        return ends

    assert asyncio.run(main()) == ["reset"]


def test_a_connection_to_a_node_that_is_down_is_reset(proxy):
    async def main():
        await asyncio.to_thread(proxy.command, {"op": "upstream", "node": 0, "ports": None})
        # the reset comes as the connection is made or at the first read (a race)
        with pytest.raises(ConnectionResetError):
            reader, writer = await connect(proxy.port, 7)
            writer.write(b"x")
            await asyncio.wait_for(reader.read(10), WAIT_S)

    asyncio.run(main())
