"""Well-formed requests with hostile values get the error code Kafka answers with.

Each case here is a request that decodes fine and that the fuzz test
(test_fuzz_requests.py) can send, whose values a broker must refuse rather than act on.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration.broker_process import BrokerProcess
from tests.integration.raw_client import RawClient, fetch_records, produce_request
from tests.integration.test_clients import create_topic
from tidelog.protocol.errors import ErrorCode
from tidelog.protocol.records import Record, build_batch

pytestmark = pytest.mark.integration

TOPIC = "hostile"


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerProcess]:
    with BrokerProcess(tmp_path_factory.mktemp("hostile") / "data") as b:
        create_topic(b, TOPIC)
        yield b
    assert b.proc is not None and b.proc.returncode == 0, b.output()


def test_transactional_records_without_a_transactional_id_are_refused_and_not_stored(
    broker: BrokerProcess,
) -> None:
    batch = build_batch(
        [Record(0, 1_700_000_000_000, None, b"in no transaction")],
        producer_id=7,
        producer_epoch=0,
        base_sequence=0,
        is_transactional=True,
    )
    with RawClient(broker.bootstrap) as client:
        response = client.request(produce_request(TOPIC, 0, batch))
    part = response.responses[0].partition_responses[0]
    assert (part.error_code, part.base_offset) == (
        ErrorCode.transactional_id_authorization_failed,
        -1,
    )
    assert fetch_records(broker.bootstrap, TOPIC, 0, 0) == b""
