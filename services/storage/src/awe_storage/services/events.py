"""Events on ``awe.<site>.storage.files``.

The object store is this service's state, and a file listing can always rebuild what the
events said, so events are published after the write, best effort: a failure is logged and
counted, never turned into a failed upload.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

import structlog
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from pydantic import BaseModel

from awecore.events import topic
from awecore.files import FileDeleted, FileInfo, FileStored
from awecore.server import KafkaSettings, ensure_topics, make_producer

__all__ = ["FileEvents"]

log = structlog.get_logger("awe.storage.events")


class FileEvents:
    def __init__(self, site: str, kafka: KafkaSettings | None) -> None:
        self.site = site
        self.kafka = kafka
        self.topic = topic(site, "storage.files")
        self._producer: AIOKafkaProducer | None = None
        self.failures = 0

    async def start(self) -> None:
        if self.kafka is None:
            return
        try:
            await ensure_topics(self.kafka, [self.topic])
            self._producer = make_producer(self.kafka)
            await self._producer.start()
        except (KafkaError, OSError) as exc:
            log.warning("no broker: file events are off", error=repr(exc))
            self._producer = None

    async def stop(self) -> None:
        if self._producer is not None:
            await self._producer.stop()

    async def _send(self, kind: str, subject: str, data: BaseModel) -> None:
        if self._producer is None:
            return
        envelope = {
            "specversion": "1.0", "id": str(uuid.uuid4()), "source": f"/awe/{self.site}/storage",
            "type": f"awe.storage.file.{kind}.v1", "time": dt.datetime.now(dt.UTC).isoformat(),
            "subject": subject, "datacontenttype": "application/json",
            "data": data.model_dump(mode="json"),
        }
        try:
            await self._producer.send_and_wait(self.topic, json.dumps(envelope).encode(),
                                               key=subject.encode())
        except KafkaError as exc:
            self.failures += 1
            log.warning("file event not published", subject=subject, error=repr(exc))

    async def stored(self, info: FileInfo) -> None:
        await self._send("stored", info.name, FileStored(file=info))

    async def deleted(self, name: str, by: str) -> None:
        await self._send("deleted", name, FileDeleted(name=name, by=by))
