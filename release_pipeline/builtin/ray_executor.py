"""The `ray` executor: a run's trials on a Ray cluster (the `ray` extra), stored by the driver like local ones.

Trials run in a pool of Ray actors, each a `TrialHost` (remote_trials.py) built once from the run's recipe, so an
adapter with an expensive start (a loaded model, a pool of sandboxed workers) starts once per actor, not per
trial; the sandbox applies on the worker as it does here. At most `concurrency` trials are in flight, in calls of a
few trials each (a call costs the driver about a millisecond; trials that ask for resources go one per call); each
call's results come back as it finishes and go to the driver's batched writer, so resuming a run and "every trial
stored exactly once" hold as for a local run. A trial whose actor or node is lost is stored as an `error`
(`worker_lost`) and retried as its next attempt on an actor Ray places on a live node.

Resources: `resources:` in the agent's manifest is what one trial needs (`cpus`, `gpus`, `memory_mb`, `custom`);
an actor that runs `k` trials at a time asks for `k` times that. Options (`executor: {name: ray, ...}` in
release.yaml, or `release run --executor ray --address ...`): `address` (a running cluster; none: `RAY_ADDRESS`,
else a Ray instance started on this machine), `actors` (default: one per live node), `retries` (attempts after a
lost worker, default 2).
"""

from __future__ import annotations

import asyncio
import math
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from release_pipeline.errors import UserError
from release_pipeline.hookspecs import hookimpl

READY_TIMEOUT_S = 300.0  # how long a new actor may take to be placed and build its trial runner
CALLS_PER_ACTOR = 8  # an actor's trials travel in about this many calls at a time (batches of the rest)


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
    """One actor of the pool and the trials it has in flight."""

    actor: Any
    capacity: int
    busy: int = 0
    alive: bool = True


@dataclass
class Pool:
    """Actors built from one recipe, with room for `per_actor` trials each."""

    ray: Any
    recipe: Any
    per_actor: int
    options: dict[str, Any]
    hosts: list[Host] = field(default_factory=list)
    spread: bool = True  # pin the first actors to the live nodes in turn (else Ray places them by resources)
    recipe_ref: Any = None  # the recipe in Ray's object store: shipped once, shared by every actor

    def add(self, node: str | None = None) -> Host:
        """A new actor: on `node` (Ray's soft node affinity places zero-CPU actors all on one node, so it is a hard
        one), or wherever Ray has room."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from release_pipeline.remote_trials import TrialHost

        options = dict(self.options, max_concurrency=self.per_actor)
        if node is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=False)
        host = Host(self.ray.remote(TrialHost).options(**options).remote(self.recipe_ref), self.per_actor)
        self.hosts.append(host)
        return host

    async def start(self, count: int) -> list[str]:
        """`count` actors spread over the live nodes, placed and built, and where each runs; one that cannot
        start is one line naming why."""
        self.recipe_ref = self.ray.put(self.recipe)
        nodes = sorted(n["NodeID"] for n in self.ray.nodes() if n.get("Alive")) if self.spread else []
        hosts = [self.add(nodes[i % len(nodes)] if nodes else None) for i in range(count)]
        ready = [asyncio.wrap_future(h.actor.where.remote().future()) for h in hosts]
        try:
            return list(await asyncio.wait_for(asyncio.gather(*ready), READY_TIMEOUT_S))
        except TimeoutError:
            raise UserError(
                f"no Ray node could take a trial host within {READY_TIMEOUT_S:g}s "
                f"(each asks for {self.options or 'no resources'}): is the cluster big enough?"
            ) from None
        except self.ray.exceptions.RayError as exc:
            raise UserError(f"a trial host could not start on the Ray cluster: {_cause(exc)}") from None

    def free(self) -> Host | None:
        """The live actor with the most room, or None when all are full."""
        live = [h for h in self.hosts if h.alive and h.busy < h.capacity]
        return max(live, key=lambda h: h.capacity - h.busy, default=None)

    def lose(self, host: Host) -> None:
        """Drop a lost actor and put a new one in its place (Ray places it on a live node)."""
        if host.alive:
            host.alive = False
            self.add()

    def stop(self) -> None:
        for host in self.hosts:
            try:
                self.ray.kill(host.actor)
            except Exception:  # already gone with its node
                pass


def _cause(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:500]


class RayExecutor:
    """Runs jobs as calls to a pool of Ray actors, at most `concurrency` in flight."""

    def __init__(self, address: str | None = None, actors: int | None = None, retries: int = 2):
        self.address, self.actors, self.retries = address, actors, retries

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
        wanted = min(concurrency, len(pending))
        if recipe.resources:  # one trial per actor, as many actors as the cluster has room for, placed by Ray
            room = trials_that_fit(ray.cluster_resources(), recipe.resources)
            if room == 0:
                raise UserError(f"no room on the Ray cluster for one trial: it asks for {recipe.resources}")
            count, per_actor, spread = min(self.actors or room, room, wanted), 1, False
        else:  # trials that ask for nothing: one actor per live node, spread by hand, sharing the concurrency
            nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
            count = max(1, min(self.actors or nodes, wanted))
            per_actor, spread = math.ceil(wanted / count), True
        pool = Pool(ray, recipe, per_actor, actor_options(recipe.resources, per_actor), spread=spread)
        try:
            places = await pool.start(count)
            nodes_used = len({place.rpartition(" node ")[2] for place in places})
            sys.stderr.write(f"ray: {count} trial hosts on {nodes_used} node(s), {per_actor} trial(s) at a time each\n")
            await self._drive(ray, pool, pending, work, concurrency, on_result)
        finally:
            pool.stop()

    async def _drive(self, ray: Any, pool: Pool, pending: deque, work: Any, concurrency: int, on_result) -> None:
        """Keep `concurrency` trials in flight, in calls of up to `batch` trials (one call costs the driver about
        a millisecond: a batch shares it), and hand each call's trials over as it returns."""
        batch = max(1, pool.per_actor // CALLS_PER_ACTOR)
        in_flight: dict[asyncio.Future, tuple[list[Any], Host]] = {}
        running = 0
        while pending or in_flight:
            while pending and running < concurrency and (host := pool.free()) is not None:
                size = min(batch, host.capacity - host.busy, concurrency - running, len(pending))
                jobs = [pending.popleft() for _ in range(size)]
                host.busy, running = host.busy + size, running + size
                in_flight[asyncio.wrap_future(host.actor.run_many.remote(jobs).future())] = (jobs, host)
            done, _ = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
            for future in done:
                jobs, host = in_flight.pop(future)
                host.busy, running = host.busy - len(jobs), running - len(jobs)
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
