"""Classifier: `notices.received` in, `notices.classified` out (sectors, CPV provenance, geography)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from starlette.applications import Starlette

from schemas import ClassifiedNotice, Notice, Topic
from services.classifier.classify import Classifier
from services.runtime.service import Runtime
from services.runtime.settings import Settings

_log = logging.getLogger(__name__)

SERVICE = "classifier"


class ClassifierService:
    def __init__(self, settings: Settings, classifier: Classifier | None = None) -> None:
        self.runtime = Runtime(settings, service=SERVICE)
        self._classifier = classifier or Classifier.load()
        self._classified = self.runtime.publisher(
            Topic.NOTICES_CLASSIFIED, schema=ClassifiedNotice, description="Classified notices, keyed by notice_id"
        )
        self.runtime.consume(Topic.NOTICES_RECEIVED, self._on_notice)

    async def _on_notice(self, notice: Notice) -> None:
        classified = self._classifier.classify(notice, now=datetime.now(UTC))
        await self._classified.publish(classified, key=classified.notice_id.encode())
        _log.info(
            "classified notice",
            extra={
                "notice_id": classified.notice_id,
                "sectors": ",".join(classified.sectors),
                "departments": ",".join(classified.departments),
            },
        )

    def asgi(self) -> Starlette:
        return self.runtime.asgi()
