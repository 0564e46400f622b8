"""Everything payments says to the broker about topics and lag, through confluent-kafka.

Owns: the topic names and partition counts, `create_topics` (explicit, idempotent: an
existing topic is fine), `WatermarkReader`, `producer_config` and `consumer_config`.
Guarantees: every producer built from `producer_config` is idempotent with acks=all, so
a retry after a broker failure never writes a record twice.
"""

from __future__ import annotations

import time
from typing import Any, Final

EVENTS_TOPIC: Final = "payments.events"
DLQ_TOPIC: Final = "payments.dlq"
RECEIPTS_TOPIC: Final = "payments.receipts"
EVENTS_PARTITIONS: Final = 6
DLQ_PARTITIONS: Final = 1
RECEIPTS_PARTITIONS: Final = 6


class BrokerUnavailable(RuntimeError):
    """The broker did not answer in time."""


def producer_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 2,
        "message.timeout.ms": 120_000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        # a killed broker's "connection refused" lines are expected during a drill
        "log_level": 2,
        **extra,
    }


def consumer_config(bootstrap: str, group_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 20,
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 1_000,
        "reconnect.backoff.ms": 50,
        "reconnect.backoff.max.ms": 500,
        "log_level": 2,
        **extra,
    }


def create_topics(bootstrap: str, timeout: float = 30.0) -> None:
    """Create the events topic (6 partitions), the dead-letter topic and the receipts
    stage's output topic (6 partitions), if absent."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
    wanted = [
        NewTopic(EVENTS_TOPIC, EVENTS_PARTITIONS, 1),
        NewTopic(DLQ_TOPIC, DLQ_PARTITIONS, 1),
        NewTopic(RECEIPTS_TOPIC, RECEIPTS_PARTITIONS, 1),
    ]
    for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise BrokerUnavailable(f"create topic failed topic={name} error={exc}") from exc


class WatermarkReader:
    """High watermarks of the events topic, from a consumer that joins no group.

    An idle librdkafka client keeps its cached leader (a replaced broker's node id) for
    minutes and answers "unknown partition"; on any error this one starts a new client.
    """

    def __init__(self, bootstrap: str, *, committed: bool = True) -> None:
        self.bootstrap = bootstrap
        # read_committed (librdkafka's default) answers the last stable offset; a topic
        # written in transactions has its true end only under read_uncommitted
        self.isolation = "read_committed" if committed else "read_uncommitted"
        self.consumer = self._new_consumer()

    def _new_consumer(self) -> Any:
        from confluent_kafka import Consumer

        return Consumer(
            consumer_config(
                self.bootstrap, "payments-watermarks", **{"isolation.level": self.isolation}
            )
        )

    def high(
        self, topic: str = EVENTS_TOPIC, partitions: int = EVENTS_PARTITIONS, timeout: float = 10.0
    ) -> dict[int, int]:
        from confluent_kafka import KafkaException, TopicPartition

        out: dict[int, int] = {}
        deadline = time.monotonic() + timeout
        for p in range(partitions):
            while True:
                try:
                    out[p] = int(
                        self.consumer.get_watermark_offsets(
                            TopicPartition(topic, p), timeout=max(0.5, deadline - time.monotonic())
                        )[1]
                    )
                    break
                except KafkaException as exc:
                    self.consumer.close()
                    self.consumer = self._new_consumer()
                    if time.monotonic() > deadline:
                        raise BrokerUnavailable(f"no watermarks topic={topic} error={exc}") from exc
                    time.sleep(0.1)
        return out

    def close(self) -> None:
        self.consumer.close()
