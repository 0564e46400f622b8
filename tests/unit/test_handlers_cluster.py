"""ApiVersions, DescribeCluster, FindCoordinator and InitProducerId on a real node."""

from __future__ import annotations

import datetime
from pathlib import Path

from tests.unit.node_harness import NodeHarness, answers_on_the_wire, request, run_node
from tidelog.broker.handlers import HANDLERS
from tidelog.protocol.codec import encode_request
from tidelog.protocol.errors import ErrorCode

API_VERSIONS, DESCRIBE_CLUSTER, FIND_COORDINATOR, INIT_PRODUCER_ID = 18, 60, 10, 22


def test_api_versions_lists_exactly_the_handler_table(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        response = await h.call(
            request(
                API_VERSIONS,
                3,
                "ApiVersionsRequest",
                client_software_name="unit",
                client_software_version="1",
            )
        )
        assert response.error_code == ErrorCode.none
        listed = [(k.api_key, k.min_version, k.max_version) for k in response.api_keys]
        expected = sorted((h.api_key, h.advertised_min_version, h.max_version) for h in HANDLERS)
        assert listed == expected
        assert (0, 0, 11) in listed  # Produce advertises v0 for old librdkafka (base.py)

    run_node(tmp_path, body)


def test_api_versions_of_an_unknown_version_answers_v0_unsupported_version(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        entity = request(
            API_VERSIONS,
            3,
            "ApiVersionsRequest",
            client_software_name="unit",
            client_software_version="1",
        )
        frame = bytearray(b"".join(encode_request(7, entity, "unit")))
        frame[6:8] = (99).to_bytes(2, "big")  # api_version 99: the connection's fallback
        transport = answers_on_the_wire(h.node, bytes(frame))
        assert not transport.aborted
        wire = bytes(transport.written)
        assert int.from_bytes(wire[4:8], "big") == 7  # correlation id, header v0
        assert int.from_bytes(wire[8:10], "big") == ErrorCode.unsupported_version

    run_node(tmp_path, body)


def test_describe_cluster_names_this_broker_as_the_only_broker_and_controller(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        response = await h.call(
            request(
                DESCRIBE_CLUSTER,
                1,
                "DescribeClusterRequest",
                include_cluster_authorized_operations=False,
                endpoint_type=1,
            )
        )
        assert response.error_code == ErrorCode.none
        assert response.cluster_id == h.node.cluster_id
        assert response.controller_id == 7
        assert [(b.broker_id, b.port) for b in response.brokers] == [(7, 9092)]

    run_node(tmp_path, body, node_id=7)


def test_describe_cluster_beyond_its_versions_closes_the_connection(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        entity = request(
            DESCRIBE_CLUSTER,
            1,
            "DescribeClusterRequest",
            include_cluster_authorized_operations=False,
        )
        frame = bytearray(b"".join(encode_request(1, entity, "unit")))
        frame[6:8] = (2).to_bytes(2, "big")
        transport = answers_on_the_wire(h.node, bytes(frame))
        assert transport.aborted
        assert transport.written == b""

    run_node(tmp_path, body)


def test_find_coordinator_answers_this_broker_for_groups(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        v4 = await h.call(
            request(
                FIND_COORDINATOR, 4, "FindCoordinatorRequest", key_type=0, coordinator_keys=("g",)
            )
        )
        (coordinator,) = v4.coordinators
        assert (coordinator.key, coordinator.error_code) == ("g", ErrorCode.none)
        assert (coordinator.node_id, coordinator.host, coordinator.port) == (1, "127.0.0.1", 9092)
        v2 = await h.call(request(FIND_COORDINATOR, 2, "FindCoordinatorRequest", key="g"))
        assert (v2.error_code, v2.node_id, v2.port) == (ErrorCode.none, 1, 9092)

    run_node(tmp_path, body)


def test_find_coordinator_answers_the_owner_of_a_transactional_ids_slot(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        response = await h.call(
            request(FIND_COORDINATOR, 3, "FindCoordinatorRequest", key="tx", key_type=1)
        )
        assert (response.error_code, response.node_id) == (ErrorCode.none, 1)
        unknown = await h.call(
            request(FIND_COORDINATOR, 3, "FindCoordinatorRequest", key="tx", key_type=7)
        )
        assert (unknown.error_code, unknown.node_id) == (ErrorCode.invalid_request, -1)

    run_node(tmp_path, body)


def _init_producer_id(
    transactional_id: str | None = None, pid: int = -1, epoch: int = -1
) -> object:
    return request(
        INIT_PRODUCER_ID,
        4,
        "InitProducerIdRequest",
        transactional_id=transactional_id,
        transaction_timeout=datetime.timedelta(seconds=60),
        producer_id=pid,
        producer_epoch=epoch,
    )


def test_init_producer_id_hands_out_distinct_ids_and_bumps_a_known_producers_epoch(
    tmp_path: Path,
) -> None:
    async def body(h: NodeHarness) -> None:
        first = await h.call(_init_producer_id())
        second = await h.call(_init_producer_id())
        assert (first.error_code, first.producer_epoch) == (ErrorCode.none, 0)
        assert second.producer_id != first.producer_id >= 0
        again = await h.call(_init_producer_id(pid=first.producer_id, epoch=0))
        assert (again.producer_id, again.producer_epoch) == (first.producer_id, 1)

    run_node(tmp_path, body)


def test_init_producer_id_for_a_transactional_id_bumps_its_epoch(tmp_path: Path) -> None:
    async def body(h: NodeHarness) -> None:
        first = await h.call(_init_producer_id(transactional_id="tx"))
        assert (first.error_code, first.producer_epoch) == (ErrorCode.none, 0)
        second = await h.call(_init_producer_id(transactional_id="tx"))
        assert (second.producer_id, second.producer_epoch) == (first.producer_id, 1)
        too_long = request(
            INIT_PRODUCER_ID,
            4,
            "InitProducerIdRequest",
            transactional_id="tx2",
            transaction_timeout=datetime.timedelta(seconds=901),
            producer_id=-1,
            producer_epoch=-1,
        )
        refused = await h.call(too_long)
        assert refused.error_code == ErrorCode.invalid_transaction_timeout

    run_node(tmp_path, body)
