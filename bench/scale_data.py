"""Generated rows for the scale curve: agents (one key each), grants and audit records, written straight into
the hub's tables with SQL, so ten million audit records take minutes rather than the hours the API would.

Sizes only grow: each `DataGenerator.grow` adds what is missing to reach the next size, on top of the bench's
own rows. What is generated is shaped like a real hub's, because its shape is what a call's cost could grow
with: each agent has a live key, grants spread evenly over the agents (on the bench connection and, past its
eight HubSpot scopes, on generated connections that hold no token), half of them with constraints, and audit
records spread over the agents with 64-character digests.

Audit records need not chain-verify, but the chain's head is kept consistent (its seq is the last record's,
its hash the last record's hash), so the hub's own appends carry on after them. Their call ids are uuid-shaped
and spread evenly over the whole key space, inserted in ascending sweeps: the unique index ends up at least as
large as one filled by random uuid4s (its pages split half-full), so a new call's random id lands on a random
leaf page, out of shared_buffers, as it would in production, yet generating pays no random insert per row.

After each step `VACUUM (ANALYZE)` and a `CHECKPOINT` run, so neither autovacuum nor a checkpoint's writes
land inside a measured run (both are timed and reported).
"""

import contextlib
import json
import math
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from psycopg.rows import TupleRow

__all__ = ["AGENT_PREFIX", "DataGenerator", "Size", "announce_change", "parse_sizes", "plain_conninfo"]

AGENT_PREFIX = "gen-agent-"
# The bench connection's HubSpot scopes: an agent with more grants than these gets them on generated connections.
_SCOPES = (
    "crm.contacts.read",
    "crm.contacts.write",
    "crm.companies.read",
    "crm.companies.write",
    "crm.deals.read",
    "crm.deals.write",
    "crm.notes.write",
    "crm.owners.read",
)
_CONSTRAINTS = ("{}", json.dumps({"max_results": 50, "redact": ["pii.email", "pii.phone"]}))
_AUDIT_BATCH = 500_000  # rows per transaction: progress shows, and no transaction holds the chain head for long
_SUFFIXES = {"": 1, "k": 1_000, "m": 1_000_000}
_COUNT = re.compile(r"^(\d+(?:\.\d+)?)([km]?)$")

# One generated audit record per i, in seq order. %(first)s..%(last)s are the seqs of this batch, %(span)s
# the seqs of the whole step (call ids sweep the key space once per step), %(agents)s how many names to cycle.
_AUDIT_INSERT = """
INSERT INTO audit_records (seq, call_id, ts, agent_name, tool, connection, decision, status, problem,
                           latency_ms, args_digest, prev_hash, hash)
SELECT i,
       lpad(to_hex(((i - %(step_first)s::bigint)::float8 / %(span)s::float8 * 4294967295)::bigint), 8, '0')
           || '-0000-4000-8000-' || lpad(to_hex(i), 12, '0'),
       now() - (%(step_last)s::bigint - i) * interval '100 ms',
       %(prefix)s || lpad((i %% %(agents)s::bigint)::text, 6, '0'),
       CASE WHEN i %% 3 = 0 THEN 'hubspot_contacts_search' ELSE 'hubspot_contacts_get' END,
       %(connection)s,
       CASE WHEN i %% 20 = 0 THEN 'deny' ELSE 'allow' END,
       CASE WHEN i %% 20 = 0 THEN 403 ELSE 200 END,
       CASE WHEN i %% 20 = 0 THEN 'scope_denied' END,
       5 + (i %% 500) / 10.0,
       md5(i::text) || md5((-i)::text),
       md5((i - 1)::text) || md5((i - 1)::text || 'h'),
       md5(i::text) || md5(i::text || 'h')
FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i
"""


def _count(raw: str) -> int:
    match = _COUNT.match(raw.strip().lower())
    if match is None:
        raise ValueError(f"{raw!r} is not a count such as 500, 10k or 1.5M")
    return int(float(match.group(1)) * _SUFFIXES[match.group(2)])


def _short(n: int) -> str:
    for suffix, unit in (("M", 1_000_000), ("k", 1_000)):
        if n >= unit and n % (unit // 10) == 0:
            return f"{n / unit:g}{suffix}"
    return str(n)


@dataclass(frozen=True, order=True)
class Size:
    """Generated rows, on top of the bench's own: agents (one key each), grants, audit records."""

    agents: int
    grants: int
    audit: int

    @property
    def label(self) -> str:
        return f"{_short(self.agents)}/{_short(self.grants)}/{_short(self.audit)}"


def parse_sizes(raw: str) -> list[Size]:
    """`AGENTS:GRANTS:AUDIT[,...]` with k/M suffixes, e.g. `0:0:0,1k:10k:1M`; each size at least the one before."""
    sizes: list[Size] = []
    for part in raw.split(","):
        counts = [_count(c) for c in part.split(":")]
        if len(counts) != 3:
            raise ValueError(f"{part!r}: expected AGENTS:GRANTS:AUDIT")
        size = Size(*counts)
        if size.grants and not size.agents:
            raise ValueError(f"{part!r}: grants need agents to hold them")
        if sizes and any(now < before for now, before in zip(counts, vars(sizes[-1]).values(), strict=True)):
            raise ValueError(f"{part!r}: sizes only grow (generated rows are never removed)")
        sizes.append(size)
    return sizes


def plain_conninfo(database_url: str) -> str:
    """psycopg's form of the hub's SQLAlchemy URL (`postgresql+psycopg://` → `postgresql://`)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", database_url)


@dataclass
class DataGenerator:
    """Grows one hub database through successive sizes; remembers what it generated so far."""

    conninfo: str
    connection: str  # the bench's connection: its name goes into audit records, its id into grants
    done: Size = field(default_factory=lambda: Size(0, 0, 0))
    seconds: dict[str, float] = field(default_factory=dict)  # the last step's timings, by what was done

    def grow(self, size: Size) -> dict[str, float]:
        """Add rows until `size` is reached; returns seconds spent per kind (only the kinds that grew)."""
        self.seconds = {}
        with self._timed("agents", size.agents > self.done.agents):
            self._agents(size.agents)
        with self._timed("grants", size.grants > self.done.grants):
            self._grants(size.grants)
        with self._timed("audit", size.audit > self.done.audit):
            self._audit(size.audit, size.agents)
        grew = bool(self.seconds)
        self.done = size
        with self._timed("vacuum+checkpoint", grew):
            self._settle()
        return self.seconds

    @contextmanager
    def _timed(self, kind: str, needed: bool) -> Iterator[None]:
        started = time.perf_counter()
        yield
        if needed:
            self.seconds[kind] = time.perf_counter() - started

    def _agents(self, target: int) -> None:
        if target <= self.done.agents:
            return
        with psycopg.connect(self.conninfo) as conn:
            conn.execute(
                "INSERT INTO agents (name, description, created_at, untrusted_policy, role, owner, model, runtime) "
                "SELECT %(prefix)s || lpad(i::text, 6, '0'), 'generated for the scale bench', now(), 'approve', "
                "'scale bench', 'bench', 'none', 'none' FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS i",
                {"prefix": AGENT_PREFIX, "first": self.done.agents, "last": target - 1},
            )
            # Keys nobody holds: only their hashes matter, as the snapshot holds every live key.
            conn.execute(
                "INSERT INTO agent_keys (agent_id, key_hash, hint, created_at) "
                "SELECT a.id, encode(sha256(convert_to('sbk_generated_' || a.name, 'UTF8')), 'hex'), 'sbk_gene', "
                "now() FROM agents a WHERE a.name LIKE %(like)s "
                "AND NOT EXISTS (SELECT 1 FROM agent_keys k WHERE k.agent_id = a.id)",
                {"like": AGENT_PREFIX + "%"},
            )

    def _grants(self, target: int) -> None:
        if target <= self.done.grants:
            return
        with psycopg.connect(self.conninfo) as conn:
            held: dict[int, int] = dict(
                conn.execute(
                    "SELECT a.id, count(g.id) FROM agents a LEFT JOIN grants g ON g.agent_id = a.id "
                    "WHERE a.name LIKE %s GROUP BY a.id",
                    (AGENT_PREFIX + "%",),
                ).fetchall()
            )
            rows = _spread(held, target - self.done.grants)
            pairs = self._pairs(conn, max(held.values()))
            with conn.cursor().copy(
                "COPY grants (agent_id, connection_id, scope, constraints, created_at) FROM STDIN"
            ) as copy:
                for n, (agent_id, index) in enumerate(rows):
                    connection_id, scope = pairs[index]
                    copy.write_row((agent_id, connection_id, scope, _CONSTRAINTS[n % 2], "now"))

    def _pairs(self, conn: psycopg.Connection[TupleRow], per_agent: int) -> list[tuple[int, str]]:
        """(connection id, scope) for an agent's 1st, 2nd … grant: the bench connection's eight scopes first,
        then generated HubSpot connections (active, without tokens: nothing refreshes or calls them)."""
        needed = math.ceil(per_agent / len(_SCOPES))
        scopes = json.dumps(list(_SCOPES))
        for n in range(1, needed):
            conn.execute(
                "INSERT INTO connections (name, provider, status, account, hub_scopes, requested_scopes, "
                "granted_scopes, token_version, created_at, updated_at) "
                "VALUES (%s, 'hubspot', 'active', 'generated', %s, %s, %s, 0, now(), now()) "
                "ON CONFLICT (name) DO NOTHING",
                (f"gen-hubspot-{n}", scopes, scopes, scopes),
            )
        names = [self.connection, *(f"gen-hubspot-{n}" for n in range(1, needed))]
        ids: dict[str, int] = dict(
            conn.execute("SELECT name, id FROM connections WHERE name = ANY(%s)", (names,)).fetchall()
        )
        return [(ids[name], scope) for name in names for scope in _SCOPES]

    def _audit(self, target: int, agents: int) -> None:
        if target <= self.done.audit:
            return
        # Autocommit, so each batch's `transaction()` is a transaction of its own, not a savepoint in one.
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            head = conn.execute("SELECT seq FROM audit_head WHERE id = 1").fetchone()
            assert head is not None, "the hub's migration seeds the chain head"
            step_first, count = int(head[0]) + 1, target - self.done.audit
            step = {"step_first": step_first, "step_last": step_first + count - 1, "span": count}
            common = {**step, "prefix": AGENT_PREFIX, "agents": max(agents, 1), "connection": self.connection}
            for first in range(0, count, _AUDIT_BATCH):
                self._audit_batch(conn, common, min(_AUDIT_BATCH, count - first))

    @staticmethod
    def _audit_batch(conn: psycopg.Connection[TupleRow], common: dict[str, object], rows: int) -> None:
        """One transaction: lock the chain head (the hub's writers wait), append after it, move it forward."""
        with conn.transaction():
            conn.execute("SET LOCAL synchronous_commit = off")  # the CHECKPOINT after the step makes it durable
            locked = conn.execute("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE").fetchone()
            assert locked is not None
            first = int(locked[0]) + 1
            last = first + rows - 1
            conn.execute(_AUDIT_INSERT, {**common, "first": first, "last": last})
            conn.execute(
                "UPDATE audit_head SET seq = %(last)s, hash = (SELECT hash FROM audit_records WHERE seq = %(last)s) "
                "WHERE id = 1",
                {"last": last},
            )

    def _settle(self) -> None:
        with psycopg.connect(self.conninfo, autocommit=True) as conn:
            conn.execute("VACUUM (ANALYZE) agents, agent_keys, connections, grants, audit_records, audit_head")
            # Needs superuser or pg_checkpoint; without it, a checkpoint may land inside a run.
            with contextlib.suppress(psycopg.Error):
                conn.execute("CHECKPOINT")


def _spread(held: dict[int, int], count: int) -> list[tuple[int, int]]:
    """`count` new grants as (agent id, its grant index), round-robin from the agents holding fewest, so grants
    stay spread evenly however the sizes step. Updates `held`."""
    rows: list[tuple[int, int]] = []
    while len(rows) < count:
        for agent_id in sorted(held, key=lambda a: (held[a], a)):
            if len(rows) == count:
                break
            rows.append((agent_id, held[agent_id]))
            held[agent_id] += 1
    return rows


def announce_change(conninfo: str, *, agent: str, key_hash: str) -> None:
    """A new agent with a key, and the policy revision bumped, in one transaction: the way every admin change
    reaches the replicas (hub.agents.bump_revision), with a key that answers once a replica has reloaded."""
    with psycopg.connect(conninfo) as conn:
        row = conn.execute(
            "INSERT INTO agents (name, description, created_at, untrusted_policy) "
            "VALUES (%s, 'scale bench probe', now(), 'approve') RETURNING id",
            (agent,),
        ).fetchone()
        assert row is not None
        conn.execute(
            "INSERT INTO agent_keys (agent_id, key_hash, hint, created_at) VALUES (%s, %s, 'sbk_prob', now())",
            (row[0], key_hash),
        )
        conn.execute("UPDATE hub_meta SET value = (value::bigint + 1)::text WHERE key = 'policy_revision'")
