"""Request builders of DescribeLogDirs (35) for the version sweep
(tests/integration/test_api_versions_sweep.py) and the fuzz corpus: every version asks
for the sweep topic's two partitions, which the sweep's one broker leads, and finds them
in the one log dir, the broker's local object store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.integration.broker_process import BrokerProcess
from tidelog.protocol.messages import build, request_module

Built = tuple[Any, Callable[[Any], None]]
TOPIC = "sweep"  # test_api_versions_sweep.TOPIC: 2 partitions, records in partition 0


def _describe_log_dirs(v: int, broker: BrokerProcess) -> Built:
    m = request_module(35, v)
    wanted = build(m, "DescribableLogDirTopic", topic=TOPIC, partitions=(0, 1))
    request = build(m, "DescribeLogDirsRequest", topics=(wanted,))

    def check(r: Any) -> None:
        (result,) = r.results
        assert (result.error_code, result.log_dir) == (
            0,
            (broker.data_dir / "objects").resolve().as_uri(),
        )
        (topic,) = result.topics
        sizes = {p.partition_index: p.partition_size for p in topic.partitions}
        assert topic.name == TOPIC and set(sizes) == {0, 1} and sizes[0] > 0
        assert all((p.offset_lag, p.is_future_key) == (0, False) for p in topic.partitions)
        if v >= 4:
            assert (result.total_bytes, result.usable_bytes) == (-1, -1)

    return request, check


WITH_BROKER: dict[int, Callable[[int, BrokerProcess], Built]] = {35: _describe_log_dirs}
RANGES = {35: (1, 5)}
