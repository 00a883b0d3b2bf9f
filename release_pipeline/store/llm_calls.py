"""What the store keeps of LLM calls: every call made, which is also the cache of their responses."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select

from release_pipeline.store.base import StoreBase
from release_pipeline.store.schema import LLMCallRow


class LLMCallStore(StoreBase):
    """The record of LLM calls, and the cache it is."""

    def cached_response(self, key: str) -> dict[str, Any] | None:
        """The response of an earlier call with this cache key, if any."""
        with self._read.connect() as conn:
            row = conn.execute(
                select(LLMCallRow.response, LLMCallRow.prompt_tokens, LLMCallRow.completion_tokens, LLMCallRow.cost)
                .where(LLMCallRow.key == key)
                .order_by(LLMCallRow.id.desc())
                .limit(1)
            ).first()
        return dict(row._mapping) if row else None

    def record_llm_call(self, **fields: Any) -> None:
        with self._write.begin() as conn:
            conn.execute(insert(LLMCallRow), [fields])

    def llm_calls(self, role: str | None = None) -> list[dict[str, Any]]:
        """Recorded calls, oldest first (request and response included), optionally of one role."""
        with self._read.connect() as conn:
            q = select(LLMCallRow).order_by(LLMCallRow.id)
            if role is not None:
                q = q.where(LLMCallRow.role == role)
            return [dict(r._mapping) for r in conn.execute(q)]
