"""Security wiring: name resolution, the on-path attacker, UserSig lifetimes, attacks.

What is decided lives in :mod:`immodel.protocol.channel` and
:mod:`immodel.protocol.admission` (does the handshake verify, is a tampered frame
detected, is a token accepted and why not); this module only supplies the facts, the
time and the randomness, each from its own named stream so that turning a feature on
never reshuffles the draws of another:

* **DNS** (``security.dns``): before the handshake a client resolves the service's name,
  ``local`` (a lookup cached ``security.dns_cache_ttl_s``, hijacked with probability
  ``security.dns_hijack_prob``) or ``httpdns`` (a request to a fixed-address resolver,
  never hijacked, local DNS when it fails). A hijacked encrypted connect fails its TLS
  handshake and the client retries at once through HTTPDNS (``hijacked_connections``);
  a hijacked plaintext connect reaches the attacker, who relays it and reads everything
  (``exposed_messages``).
* **Tampering** (``security.tamper_prob``, per message in a frame: a message sent up, a
  push, a poll answer, a sync page). Encrypted: the record check fails, the frame is
  dropped and the connection reset, and the normal repairs bring the message. Plaintext:
  the altered copy is shown (altered on the way up, it is stored so and every recipient
  sees it).
* **UserSig** (``security.usersig_ttl_s``, ``security.epoch_s``): each client holds a
  token issued at ``epoch + issue time``; a login with an expired token is refused
  (``auth_expired``), the SDK fetches a new one (``security.usersig_fetch_ms``) and logs
  in again (``relogins``); a session whose token expires is ended by the server and the
  SDK does the same.
* **Attacks** (``security.forged_per_s``, ``security.attack_logins_per_s``): frames
  without a session and hostile logins (forged, tampered, another user's, replayed).

Lifecycle: built once per world before the clients connect; the attack processes start
with :meth:`start`. With the default keys nothing here draws a random number or
schedules an event, so a default run is unchanged.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

from immodel.protocol import admission, channel
from immodel.protocol.usersig import generate_usersig
from immodel.sim.kernel import at_time, later
from immodel.sim.network import latency_sampler

SDKAPPID = 1400000000
USERSIG_KEY = "immodel-simulated-app-secret-key"
ATTACKER_KEY = "an-attacker-guess-at-the-secret-key"
ATTACK_KINDS = ("forged", "tampered", "other_user", "replay")
FORGED_KINDS = ("send", "poll", "sync")


class Security:
    """The security facts of one run (see the module docstring)."""

    def __init__(self, world: Any) -> None:
        sc = world.sc
        self.w = world
        self.env = world.env
        self.dns = sc["security.dns"]
        self.channel = sc["security.channel"]
        self.cache_ttl_s = sc["security.dns_cache_ttl_s"]
        self.hijack_prob = sc["security.dns_hijack_prob"]
        self.httpdns_fail_prob = sc["security.httpdns_fail_prob"]
        self.tamper_prob = sc["security.tamper_prob"]
        self.epoch_s = sc["security.epoch_s"]
        self.ttl_s = sc["security.usersig_ttl_s"]
        self.steady = sc["security.usersig_issued"] == "steady_state"
        self.forged_per_s = sc["security.forged_per_s"]
        self.attack_per_s = sc["security.attack_logins_per_s"]
        self.replay_after_s = sc["security.replay_after_s"]
        streams = world.streams
        self._dns_delay = latency_sampler(sc["security.dns_latency_ms"], streams["dns_latency"])
        self._httpdns_delay = latency_sampler(
            sc["security.httpdns_latency_ms"], streams["httpdns_latency"]
        )
        self._fetch_delay = latency_sampler(
            sc["security.usersig_fetch_ms"], streams["usersig_fetch"]
        )
        self.rejected_by_reason: Counter[str] = Counter()
        self.connect_latency_s: list[float] = []
        self._issued: dict[int, float] = {}  # uid → its current token's issue time (sim s)
        self._tokens: dict[int, tuple[str, float]] = {}  # uid → (token, issue time)

    # ------------------------------------------------------------------------------------
    # UserSig
    def _issued_at(self, uid: int) -> float:
        """When ``uid``'s current token was issued (sim seconds, whole): its first one at
        t = 0, or at a uniform point of the last lifetime with ``usersig_issued =
        "steady_state"``. The token itself is made only when a login needs it (an HMAC
        per user at set-up would cost a default run time for nothing)."""
        at = self._issued.get(uid)
        if at is None:
            draw = -self.w.streams["usersig_age"].uniform() * self.ttl_s if self.steady else 0.0
            at = self._issued[uid] = float(math.floor(draw))
        return at

    def token(self, uid: int) -> str:
        """``uid``'s current UserSig."""
        at = self._issued_at(uid)
        held = self._tokens.get(uid)
        if held is None or held[1] != at:
            held = (
                generate_usersig(
                    sdkappid=SDKAPPID,
                    key=USERSIG_KEY,
                    identifier=str(uid),
                    expire_s=self.ttl_s,
                    now=self.epoch_s + int(at),
                ),
                at,
            )
            self._tokens[uid] = held
        return held[0]

    def expires_at_s(self, uid: int) -> float:
        """Sim time after which ``uid``'s current token is refused (verify's ``now >
        time + expire``, on whole seconds)."""
        return self._issued_at(uid) + self.ttl_s + 1.0

    def verify(self, token: str, uid: int) -> admission.Decision:
        """The auth stage's decision on ``token`` presented as ``uid`` now."""
        return admission.authenticate(
            token,
            sdkappid=SDKAPPID,
            key=USERSIG_KEY,
            identifier=str(uid),
            now=self.epoch_s + math.floor(self.env.now),
        )

    def refresh(self, client, then) -> None:
        """The SDK fetches a fresh UserSig from the business backend, then calls
        ``then(client)`` (a relogin)."""
        self.w.counters["relogins"] += 1
        later(self.env, self._fetch_delay(), self._fetched, (client, then))

    def _fetched(self, arg) -> None:
        client, then = arg
        self._issued[client.uid] = float(math.floor(self.env.now))
        then(client)

    def watch_expiry(self, client, conn) -> None:
        """Schedule the end of ``conn``'s session when its token expires (only when that
        falls inside the run: a default run schedules nothing)."""
        t = self.expires_at_s(client.uid)
        if t < self.w.horizon_s:
            at_time(self.env, t, self._session_expired, (client, conn))

    def _session_expired(self, arg) -> None:
        client, conn = arg
        if client.conn is not conn or not self.w.access.serves(conn):
            return
        if self.env.now < self.expires_at_s(client.uid):
            return  # the token was renewed on this connection meanwhile
        # The server ends the session (the SDK's "UserSig expired" event): what was not
        # acknowledged goes to the offline queue; the SDK fetches a token and logs in.
        self.w.access.close(client.uid, clean=True)
        self.w.side.detach(client)
        self.refresh(client, self.w.side.connect)

    # ------------------------------------------------------------------------------------
    # DNS
    def resolve(self, client, done, via: str | None = None) -> None:
        """Resolve the service's address for ``client``; ``done((client, hijacked))``
        after the lookup's time. ``via`` forces "httpdns" (a retry after a failed
        identity check)."""
        now = self.env.now
        mode = via or self.dns
        if mode == "local" and client.dns_until > now:
            done((client, client.dns_hijacked))
            return
        if mode == "httpdns":
            self.w.counters["httpdns_requests"] += 1
            delay = self._httpdns_delay()
            failed = (
                self.httpdns_fail_prob > 0
                and self.w.streams["httpdns_fail"].uniform() < self.httpdns_fail_prob
            )
            if not failed:
                client.dns_hijacked = False
                client.dns_until = now + delay + self.cache_ttl_s
                later(self.env, delay, done, (client, False))
                return
            # the resolver did not answer: fall back to the system resolver
            later(self.env, delay, self._local_after_failure, (client, done))
            return
        self._local(client, done, 0.0)

    def _local_after_failure(self, arg) -> None:
        client, done = arg
        self._local(client, done, 0.0)

    def _local(self, client, done, extra_s: float) -> None:
        self.w.counters["dns_lookups"] += 1
        delay = extra_s + self._dns_delay()
        hijacked = self.hijack_prob > 0 and self.w.streams["dns"].uniform() < self.hijack_prob
        client.dns_hijacked = hijacked
        client.dns_until = self.env.now + delay + self.cache_ttl_s
        later(self.env, delay, done, (client, hijacked))

    def forget_address(self, client) -> None:
        """The address failed its identity check: drop it from the cache."""
        client.dns_until = -math.inf
        client.dns_hijacked = False

    # ------------------------------------------------------------------------------------
    # the on-path attacker
    def tampered(self) -> bool:
        """Whether the attacker alters this message (a draw only when tampering is on)."""
        return self.tamper_prob > 0 and self.w.streams["tamper"].uniform() < self.tamper_prob

    # ------------------------------------------------------------------------------------
    # attacks from outside
    def start(self) -> None:
        """Start the attack processes the scenario asks for."""
        if self.forged_per_s > 0:
            later(self.env, self._gap(self.forged_per_s, "forge"), self._forge, None)
        if self.attack_per_s > 0:
            later(self.env, self._gap(self.attack_per_s, "attack"), self._attack_login, None)

    def _gap(self, rate: float, stream: str) -> float:
        return self.w.streams[stream].exponential(1.0 / rate)

    def _forge(self, _arg) -> None:
        s = self.w.streams["forge"]
        kind = FORGED_KINDS[s.below(len(FORGED_KINDS))]
        self.w.access.forged_arrives(kind, s.below(self.w.n_users))
        if self.env.now < self.w.duration_s:
            later(self.env, self._gap(self.forged_per_s, "forge"), self._forge, None)

    def hostile_token(self, kind: str, victim: int) -> str:
        """A token an attacker presents as ``victim``: ``forged`` (signed with a guessed
        key), ``tampered`` (the victim's token with one character changed),
        ``other_user`` (a genuine token of another user), ``replay`` (the victim's token
        captured ``security.replay_after_s`` ago, when it was issued)."""
        now_unix = self.epoch_s + math.floor(self.env.now)
        if kind == "forged":
            return generate_usersig(
                sdkappid=SDKAPPID,
                key=ATTACKER_KEY,
                identifier=str(victim),
                expire_s=self.ttl_s,
                now=now_unix,
            )
        if kind == "tampered":
            good = self.token(victim)
            i = len(good) // 2
            return good[:i] + ("A" if good[i] != "A" else "B") + good[i + 1 :]
        if kind == "other_user":
            other = (victim + 1) % self.w.n_users
            return self.token(other)
        return generate_usersig(
            sdkappid=SDKAPPID,
            key=USERSIG_KEY,
            identifier=str(victim),
            expire_s=self.ttl_s,
            now=now_unix - math.floor(self.replay_after_s),
        )

    def _attack_login(self, _arg) -> None:
        s = self.w.streams["attack"]
        kind = ATTACK_KINDS[s.below(len(ATTACK_KINDS))]
        victim = s.below(self.w.n_users)
        self.w.access.hostile_login(kind, victim, self.hostile_token(kind, victim))
        if self.env.now < self.w.duration_s:
            later(self.env, self._gap(self.attack_per_s, "attack"), self._attack_login, None)

    def rejected(self, reason: str) -> None:
        """Count a refused login under its reason."""
        self.w.counters["logins_rejected"] += 1
        self.rejected_by_reason[reason] += 1

    @staticmethod
    def handshake(channel_kind: str, hijacked: bool) -> str:
        """The protocol's verdict on a handshake (see :func:`channel.handshake_outcome`)."""
        return channel.handshake_outcome(channel_kind, hijacked=hijacked)


__all__ = ["ATTACK_KINDS", "SDKAPPID", "USERSIG_KEY", "Security"]
