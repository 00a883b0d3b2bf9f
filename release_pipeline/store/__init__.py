"""The store: the version line, runs, trials and every record the stages leave behind.

`Store` is the only door to the database, and it speaks in `release_pipeline.models` records, so services and
plugins never hold a session. It is made of one part per thing it keeps: `versions.py` (agents, versions, the
head and its moves), `runs.py` (runs and their leases), `trials.py`, `reports.py` (symptoms, specs, gate
reports) and `llm_calls.py` (the record of LLM calls, which is also their cache), over `base.py`'s engines.
"""

from __future__ import annotations

from release_pipeline.store.llm_calls import LLMCallStore
from release_pipeline.store.reports import ReportStore
from release_pipeline.store.runs import RunStore
from release_pipeline.store.trials import TrialStore, unrecordable_stub
from release_pipeline.store.versions import TwinVersion, VersionStore

__all__ = ["Store", "TwinVersion", "unrecordable_stub"]


class Store(VersionStore, RunStore, TrialStore, ReportStore, LLMCallStore):
    """A migrated database behind two engines: deferred reads, IMMEDIATE writes."""
