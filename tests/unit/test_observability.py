"""The pure parts of observability: error scans, metric labels, rates, prices, config."""

from __future__ import annotations

import asyncio
import datetime
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tidelog.broker.config_values import HostPort, parse_http_listen
from tidelog.broker.observability.measured_store import MeasuredStore
from tidelog.broker.observability.metrics import BrokerMetrics, error_name, object_kind
from tidelog.broker.observability.prices import MONTH_S, month_usd
from tidelog.broker.observability.status import RateWindow
from tidelog.protocol.error_scan import api_name, first_error
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.messages import build, response_module
from tidelog.storage.memory_store import MemoryObjectStore
from tidelog.storage.object_store import ObjectNotFound, PreconditionFailed


def produce_response(*codes: ErrorCode) -> object:
    mod = response_module(0, 9)
    partitions = tuple(
        build(
            mod,
            "PartitionProduceResponse",
            index=i,
            error_code=code,
            base_offset=-1,
            log_append_time=None,
            log_start_offset=-1,
            record_errors=(),
            error_message=None,
        )
        for i, code in enumerate(codes)
    )
    topic = build(mod, "TopicProduceResponse", name="t", partition_responses=partitions)
    return build(mod, "ProduceResponse", responses=(topic,), throttle_time=datetime.timedelta(0))


def test_first_error_finds_the_first_nested_code_or_none() -> None:
    assert first_error(produce_response(ErrorCode.none, ErrorCode.none)) == 0
    found = first_error(
        produce_response(
            ErrorCode.none, ErrorCode.not_leader_or_follower, ErrorCode.corrupt_message
        )
    )
    assert found == ErrorCode.not_leader_or_follower
    assert first_error(None) == 0


def test_api_names_are_kafkas() -> None:
    assert api_name(0, 9) == "Produce"
    assert api_name(1, 12) == "Fetch"
    assert api_name(18, 3) == "ApiVersions"
    assert api_name(9999, 0) == "Api9999"


def test_labels_name_errors_and_objects() -> None:
    assert error_name(0) == "NONE"
    assert error_name(ErrorCode.unknown_topic_or_partition) == "UNKNOWN_TOPIC_OR_PARTITION"
    assert error_name(12345) == "UNKNOWN_12345"
    assert object_kind("streams/00000000000000000000-n1/log/00000000000000000001.tlc") == "commit"
    assert object_kind("streams/00000000000000000000-n1/snapshots/1.json") == "snapshot"
    assert object_kind("segments/id/0000000000/x.tls") == "segment"
    assert object_kind("log/00000000000000000001.tlc") == "metadata"
    assert object_kind("snapshots/00000000000000000001.json") == "snapshot"
    assert object_kind("elsewhere") == "other"


def test_request_metrics_are_exposed_by_api_and_error() -> None:
    metrics = BrokerMetrics(node_id=3)
    metrics.name_apis({0: "Produce"})
    metrics.request(0, 0, 0.0002)
    metrics.request(0, ErrorCode.not_leader_or_follower, 0.003)
    metrics.bytes_in("t", 100)
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.exposition().decode())
        for s in family.samples
    }
    assert samples[("tidelog_requests_total", (("api", "Produce"), ("error", "NONE")))] == 1
    key = ("tidelog_requests_total", (("api", "Produce"), ("error", "NOT_LEADER_OR_FOLLOWER")))
    assert samples[key] == 1
    assert samples[("tidelog_request_duration_seconds_count", (("api", "Produce"),))] == 2
    sub_ms = ("tidelog_request_duration_seconds_bucket", (("api", "Produce"), ("le", "0.00025")))
    assert samples[sub_ms] == 1  # sub-millisecond latencies land in their own buckets
    assert samples[("tidelog_bytes_in_total", (("topic", "t"),))] == 100


def test_measured_store_reports_outcomes_and_bytes() -> None:
    seen: list[tuple[str, str, str, int]] = []
    store = MeasuredStore(
        MemoryObjectStore(),
        lambda op, key, outcome, size, _s: seen.append((op, key, outcome, size)),
    )

    async def run() -> None:
        await store.put_if_absent("log/1", b"abc")
        with pytest.raises(PreconditionFailed):
            await store.put_if_absent("log/1", [b"x", b"yz"])
        assert await store.get("log/1") == b"abc"
        with pytest.raises(ObjectNotFound):
            await store.get("log/2")

    asyncio.run(run())
    assert seen == [
        ("put_if_absent", "log/1", "ok", 3),
        ("put_if_absent", "log/1", "precondition_failed", 3),
        ("get", "log/1", "ok", 3),
        ("get", "log/2", "not_found", 0),
    ]
    assert store.counts == Counter({"put_if_absent": 2, "get": 2})
    assert not store.errors["get"]  # a missing key is an answer, not an error


def test_rates_cover_the_window_and_forget_older_samples() -> None:
    window = RateWindow()
    assert window.rates() == {}
    window.sample(0.0, {"put": 0})
    window.sample(10.0, {"put": 50, "get": 20})
    assert window.rates() == {"get": 2.0, "put": 5.0}
    window.sample(100.0, {"put": 50, "get": 20})  # the sample at 0 s is forgotten
    window.sample(110.0, {"put": 150, "get": 20})
    # From the newest sample at least a window old (10 s), not from 0 s.
    assert window.rates()["put"] == pytest.approx(100 / 100)
    assert [t for t, _ in window.samples] == [10.0, 100.0, 110.0]


def test_month_prices_requests_by_tier_and_storage() -> None:
    month = month_usd({"put_if_absent": 1.0, "get": 10.0, "delete": 5.0}, 10**9)
    assert month["put_if_absent"] == pytest.approx(MONTH_S * 0.005 / 1000)
    assert month["get"] == pytest.approx(10 * MONTH_S * 0.0004 / 1000)
    assert month["delete"] == 0
    assert month["storage"] == pytest.approx(0.023)
    assert month["total"] == pytest.approx(month["put_if_absent"] + month["get"] + month["storage"])


def test_http_listen_takes_an_address_or_off() -> None:
    assert parse_http_listen("127.0.0.1:9644") == HostPort("127.0.0.1", 9644)
    assert parse_http_listen("OFF") is None
    with pytest.raises(ValueError, match="HOST:PORT or off"):
        parse_http_listen("nowhere")
