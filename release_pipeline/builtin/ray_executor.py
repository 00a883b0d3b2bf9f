"""The `ray` executor: a run's trials on a Ray cluster (the `ray` extra), stored by the driver like local ones.

Trials run in a pool of Ray actors, each a `TrialHost` (remote_trials.py) built from the artifact's recipe, so an
adapter with an expensive start (a loaded model, a pool of sandboxed workers) starts once per actor, not per
trial; the sandbox applies on the worker as it does here. A pool outlives its run while this process lives: the
next run of the same artifact (a gate asks for more trials of each side round after round, a run goes on to the
next split) finds its hosts started, with no second start-up.

At most `concurrency` trials run at once: each actor runs its share, and holds a few more queued so that it never
waits for the driver between calls. Trials travel in calls of a few each (a call costs the driver about a
millisecond; trials that ask for resources go one per call); each call's results come back as it finishes and go
to the driver's batched writer, so resuming a run and "every trial stored exactly once" hold as for a local run.
A trial whose actor or node is lost (running or queued there) is stored as an `error` (`worker_lost`) and retried
as its next attempt on an actor Ray places on a live node.

Resources: `resources:` in the agent's manifest is what one trial needs (`cpus`, `gpus`, `memory_mb`, `custom`);
such trials run one per actor, as many actors as the cluster has room for. Trials that ask for nothing run on one
actor per live node. Options (`executor: {name: ray, ...}` in release.yaml, or `release run --executor ray
--address ...`): `address` (a running cluster; none: `RAY_ADDRESS`, else a Ray instance started on this machine),
`actors` (default: one per live node, or as many as fit), `retries` (attempts after a lost worker, default 2),
`warm_pools` (pools kept started for later runs in this process, default 4; 0 stops each with its run). A pool
that holds resources is stopped before another such pool starts, so the two never wait on each other's room.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from release_pipeline.errors import UserError
from release_pipeline.notices import say
from release_pipeline.plugins.hookspecs import hookimpl

READY_TIMEOUT_S = 300.0  # how long a new actor may take to be placed and build its trial runner
CALLS_PER_ACTOR = 8  # an actor's running trials travel in about this many calls (batches of the rest)
QUEUED_CALLS = 2  # calls an actor holds queued beyond those it runs, so it never waits on the driver's round trip


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("the ray executor needs Ray: pip install 'release-pipeline[ray]'") from None
    return ray


def connect(address: str | None) -> Any:
    """Ray, connected to `address` (or RAY_ADDRESS, or a local instance it starts), once per process."""
    ray = _ray()
    if not ray.is_initialized():
        try:
            ray.init(address=address or None, log_to_driver=False, configure_logging=False, namespace="release")
        except ConnectionError as exc:
            raise UserError(f"cannot reach the Ray cluster at {address}: {exc}") from None
    return ray


@dataclass
class Host:
    """One actor of a pool: how many trials it runs at once, how many more it may hold queued, how many it has."""

    actor: Any
    capacity: int
    queued: int
    busy: int = 0  # trials sent to it and not returned yet
    alive: bool = True

    @property
    def room(self) -> int:
        return self.capacity + self.queued - self.busy if self.alive else 0


@dataclass(frozen=True)
class Shape:
    """The actors a run wants: how many trials each runs at once, and whether they are pinned to the live nodes in
    turn (trials that ask for nothing) or placed by Ray where their resources fit."""

    capacities: tuple[int, ...]
    spread: bool

    @classmethod
    def of(cls, ray: Any, resources: dict[str, Any], concurrency: int, pending: int, actors: int | None) -> Shape:
        if resources:  # one trial per actor, as many actors as there is room and work for
            room = trials_that_fit(ray.cluster_resources(), resources)
            if room == 0:
                raise UserError(f"no room on the Ray cluster for one trial: it asks for {resources}")
            return cls((1,) * min(actors or room, room, concurrency, pending), spread=False)
        nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
        return cls(shares(concurrency, max(1, min(actors or nodes, concurrency))), spread=True)

    def covers(self, wanted: Shape) -> bool:
        """Whether a pool of this shape serves a run that wants `wanted` (resource pools grow as needed)."""
        return self == wanted or (not self.spread and not wanted.spread)


def shares(total: int, parts: int) -> tuple[int, ...]:
    """`total` split into `parts` whole shares that differ by at most one."""
    return tuple(total // parts + (i < total % parts) for i in range(parts))


@dataclass
class Pool:
    """Actors built from one recipe, each running its share of the run's trials."""

    ray: Any
    recipe: Any
    shape: Shape
    hosts: list[Host] = field(default_factory=list)
    recipe_ref: Any = None  # the recipe in Ray's object store: shipped once, shared by every actor

    @property
    def holds_resources(self) -> bool:
        return bool(self.recipe.resources)

    def add(self, capacity: int, node: str | None = None) -> Host:
        """A new actor running `capacity` trials at once: on `node` (Ray's soft node affinity places zero-CPU actors
        all on one node, so it is a hard one), or wherever Ray has room."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from release_pipeline.trials.remote import TrialHost

        queued = QUEUED_CALLS * batch_size(capacity) if capacity > 1 else 0  # long trials: no queue behind them
        options = dict(actor_options(self.recipe.resources, capacity), max_concurrency=capacity + queued)
        if node is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        self.recipe_ref = self.recipe_ref or self.ray.put(self.recipe)
        actor = self.ray.remote(TrialHost).options(**options).remote(self.recipe_ref, limit=capacity)
        host = Host(actor, capacity, queued)
        self.hosts.append(host)
        return host

    async def grow(self, shape: Shape) -> list[str]:
        """Actors up to `shape`, spread over the live nodes when it says so, placed and built, and where the new
        ones run; one that cannot start is one line naming why. Hosts lost since the last run are replaced."""
        await self.ready(self.hosts, drop_lost=True)
        nodes = sorted(n["NodeID"] for n in self.ray.nodes() if n.get("Alive")) if shape.spread else []
        new = [
            self.add(capacity, nodes[i % len(nodes)] if nodes else None)
            for i, capacity in enumerate(shape.capacities[len(self.hosts) :], start=len(self.hosts))
        ]
        return await self.ready(new)

    async def ready(self, hosts: list[Host], drop_lost: bool = False) -> list[str]:
        """Wait until `hosts` answer (where they run); a lost one is dropped when `drop_lost`, else fatal."""
        calls = [asyncio.wrap_future(h.actor.where.remote().future()) for h in hosts]
        try:
            answers = await asyncio.wait_for(asyncio.gather(*calls, return_exceptions=drop_lost), READY_TIMEOUT_S)
        except TimeoutError:
            raise UserError(
                f"no Ray node could take a trial host within {READY_TIMEOUT_S:g}s (each asks for "
                f"{actor_options(self.recipe.resources, 1) if self.holds_resources else 'no resources'}): "
                "is the cluster big enough?"
            ) from None
        except self.ray.exceptions.RayError as exc:
            raise UserError(f"a trial host could not start on the Ray cluster: {_cause(exc)}") from None
        lost = {id(host) for host, answer in zip(hosts, answers, strict=True) if isinstance(answer, BaseException)}
        self.hosts = [h for h in self.hosts if id(h) not in lost]
        return [a for a in answers if isinstance(a, str)]

    def free(self) -> Host | None:
        """The live actor with the most room, or None when all are full."""
        best = max(self.hosts, key=lambda h: h.room, default=None)
        return best if best is not None and best.room > 0 else None

    def lose(self, host: Host) -> None:
        """Drop a lost actor and put a new one in its place (Ray places it on a live node)."""
        if host.alive:
            host.alive = False
            self.add(host.capacity)

    def stop(self) -> None:
        for host in self.hosts:
            try:
                self.ray.kill(host.actor)
            except Exception:  # already gone with its node
                pass
        self.hosts = []


def batch_size(capacity: int) -> int:
    return max(1, capacity // CALLS_PER_ACTOR)


def _cause(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:500]


_warm: OrderedDict[str, Pool] = OrderedDict()  # pools started by this process, by recipe, the latest used last


class RayExecutor:
    """Runs jobs as calls to a pool of Ray actors, at most `concurrency` running at once."""

    def __init__(self, address: str | None = None, actors: int | None = None, retries: int = 2, warm_pools: int = 4):
        self.address, self.actors, self.retries, self.warm_pools = address, actors, retries, warm_pools

    async def map(
        self,
        jobs: Iterable[Any],
        work: Callable[[Any], Awaitable[Any]],
        concurrency: int,
        on_result: Callable[[Any], None],
    ) -> None:
        pending = deque(jobs)
        if not pending:
            return
        recipe_of = getattr(work, "recipe", None)
        if recipe_of is None:
            raise UserError("the ray executor runs trial runners only (it needs their recipe)")
        ray = connect(self.address)
        recipe = recipe_of()
        shape = Shape.of(ray, recipe.resources, concurrency, len(pending), self.actors)
        pool = self._pool(ray, recipe, shape)
        try:
            await self._start(pool, shape)
            await self._drive(ray, pool, pending, work, on_result)
        except BaseException:
            _warm.pop(recipe.key, None)
            pool.stop()
            raise
        self._keep(recipe.key, pool)

    def _pool(self, ray: Any, recipe: Any, shape: Shape) -> Pool:
        """The warm pool built from `recipe` when it has the shape wanted, else a new one (stopping, for a pool
        that holds resources, every other warm pool that does: they would wait on each other's room)."""
        pool = _warm.pop(recipe.key, None)
        if pool is not None and pool.shape.covers(shape):
            return pool
        if pool is not None:
            pool.stop()
        if recipe.resources:
            for key, other in list(_warm.items()):
                if other.holds_resources:
                    other.stop()
                    del _warm[key]
        return Pool(ray, recipe, shape)

    async def _start(self, pool: Pool, shape: Shape) -> None:
        """Bring `pool` to `shape`, and say where the actors it started run."""
        places = await pool.grow(shape)
        if places:
            nodes = len({place.rpartition(" node ")[2] for place in places})
            capacity = "/".join(str(c) for c in sorted({h.capacity for h in pool.hosts}))
            say(f"ray: {len(places)} trial hosts on {nodes} node(s), {capacity} trial(s) at a time each")

    def _keep(self, key: str, pool: Pool) -> None:
        """Keep `pool` started for the next run of its recipe, stopping the least recently used beyond the limit."""
        _warm[key] = pool
        while len(_warm) > self.warm_pools:
            _warm.popitem(last=False)[1].stop()

    async def _drive(self, ray: Any, pool: Pool, pending: deque, work: Any, on_result) -> None:
        """Keep every actor busy with its share of trials and a few queued, in calls of a batch of trials (one call
        costs the driver about a millisecond: a batch shares it), and hand each call's trials over as it returns."""
        in_flight: dict[asyncio.Future, tuple[list[Any], Host]] = {}
        while pending or in_flight:
            while pending and (host := pool.free()) is not None:
                jobs = [pending.popleft() for _ in range(min(batch_size(host.capacity), host.room, len(pending)))]
                host.busy += len(jobs)
                call = host.actor.run_many.remote(jobs, work.run_id)
                in_flight[asyncio.wrap_future(call.future())] = (jobs, host)
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                jobs, host = in_flight.pop(future)
                host.busy -= len(jobs)
                try:
                    trials = future.result()
                except ray.exceptions.RayTaskError as exc:  # raised by our own code on the worker: a config error
                    cause = exc.cause if isinstance(exc.cause, UserError) else None
                    raise cause or UserError(f"a trial failed on the Ray cluster: {_cause(exc)}") from None
                except ray.exceptions.RayError as exc:  # the actor, its worker or its node is gone
                    pool.lose(host)
                    why = f"{type(exc).__name__}: the Ray worker running it was lost"
                    trials = [work.lost(job, why) for job in jobs]
                    pending.extend(
                        type(job)(job.task, job.repeat, job.attempt + 1) for job in jobs if job.attempt < self.retries
                    )
                for trial in trials:
                    on_result(trial)


def trials_that_fit(cluster: dict[str, float], resources: dict[str, Any]) -> int:
    """How many trials asking for `resources` the cluster's totals hold at once (fragmentation aside)."""
    asks = {"CPU": resources.get("cpus", 0), "GPU": resources.get("gpus", 0)}
    asks["memory"] = resources.get("memory_mb", 0) * 2**20
    asks.update(resources.get("custom", {}))
    fits = [int(cluster.get(name, 0) // amount) for name, amount in asks.items() if amount]
    return min(fits, default=1_000_000)


def actor_options(resources: dict[str, Any], per_actor: int) -> dict[str, Any]:
    """Ray actor options for an actor that runs `per_actor` trials at a time, each needing `resources`."""
    options: dict[str, Any] = {"num_cpus": resources.get("cpus", 0) * per_actor}
    if resources.get("gpus"):
        options["num_gpus"] = resources["gpus"] * per_actor
    if resources.get("memory_mb"):
        options["memory"] = int(resources["memory_mb"] * per_actor * 2**20)
    if resources.get("custom"):
        options["resources"] = {name: amount * per_actor for name, amount in resources["custom"].items()}
    return options


@hookimpl
def release_register_executors(register):
    register("ray", RayExecutor)
