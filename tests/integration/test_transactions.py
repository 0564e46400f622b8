"""Kafka transactions end to end: confluent-kafka, aiokafka and kafka-python against the
real broker process, each through its own transactional API (txn_clients*.py).

Each test runs once per client: a committed transaction over 2 topics x 3 partitions
seen exactly and in order read_committed; an aborted one invisible read_committed and
only its data records read_uncommitted; an open transaction holding read_committed
consumers at the last stable offset (ListOffsets READ_COMMITTED answers it) until it
commits; consume-transform-produce with send_offsets_to_transaction (offsets committed
with the transaction, not by an aborted one); a second producer with the same
transactional id fencing the first; an abandoned transaction aborted by the broker after
transaction.timeout.ms; and InitProducerId refusing a timeout above the broker's maximum.

The broker is `tidelog serve --transaction-max-timeout-ms 60000`, one per module. With
TIDELOG_TXN_PEER=tansu it is Tansu 0.6 instead (the peer broker, from the bench extra:
`TIDELOG_TXN_PEER=tansu .venv/bin/python -m pytest tests/integration/test_transactions.py`),
which checks the tests against a broker that already has transactions. Where Tansu is
wrong a case is xfail(strict) for Tansu only, expecting the one exception its bug
raises, so every step before it must still pass there:
- Fetch read_committed answers no aborted_transactions, so aborted records are handed
  out (`check`, PeerBug): the abort, consume-transform-produce, fencing cases;
- no abandoned transaction is aborted by its timeout (not in 60 s);
- ListOffsets LATEST answers 0 read_committed, not the LSO, and read_uncommitted the
  last batch's base offset + 1, not the high watermark;
- InitProducerId v0-v2 with a transactional id answers UNKNOWN_SERVER_ERROR, and
  aiokafka sends only v0: every aiokafka case (its UnknownError). Through a proxy that
  upgraded those to v3, aiokafka met the same results as the other clients, except that
  AddPartitionsToTxn v0 answers PRODUCER_FENCED (90), unknown to v0 clients, where Kafka
  answers INVALID_PRODUCER_EPOCH.
The maximum timeout case is skipped for Tansu, which has no such setting.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from confluent_kafka.admin import AdminClient, NewTopic

from tests.integration.broker_process import BrokerProcess
from tests.integration.txn_clients import Kit, Producer, RdkKit, Record, poll_until
from tests.integration.txn_clients_py import AioKit, KpKit
from tidelog.broker.processes.tansu import TansuProcess

pytestmark = pytest.mark.integration

PEER = os.environ.get("TIDELOG_TXN_PEER", "")
MAX_TIMEOUT_MS = 60_000
SHORT_TIMEOUT_MS = 3_000
EXPIRY_WAIT_S = 60.0  # for the broker to abort a transaction 3 s past its timeout
END = b"end"  # a record after the records under test: read up to it, all is in view


@dataclass(frozen=True)
class Broker:
    kind: str  # "tidelog" or "tansu"
    bootstrap: str


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    if PEER == "tansu":
        tansu = TansuProcess(tmp_path_factory.mktemp("txn-tansu") / "tansu.log").start()
        try:
            yield Broker("tansu", tansu.bootstrap)
        finally:
            tansu.stop()
        return
    assert not PEER, f"TIDELOG_TXN_PEER={PEER!r}: only 'tansu' is known"
    args = ["--transaction-max-timeout-ms", str(MAX_TIMEOUT_MS)]
    proc = BrokerProcess(tmp_path_factory.mktemp("txn") / "data", args=args)
    with proc:
        yield Broker("tidelog", proc.bootstrap)
    assert proc.proc is not None and proc.proc.returncode == 0, proc.output()


@pytest.fixture(params=[RdkKit, AioKit, KpKit], ids=["confluent", "aiokafka", "kafka-python"])
def kit(request: pytest.FixtureRequest, broker: Broker) -> Iterator[Kit]:
    client: Kit = request.param(broker.bootstrap)
    if broker.kind == "tansu" and isinstance(client, AioKit):
        from aiokafka.errors import UnknownError

        bug = "Tansu 0.6: InitProducerId v0 (aiokafka's only) answers UNKNOWN_SERVER_ERROR"
        request.applymarker(pytest.mark.xfail(strict=True, raises=UnknownError, reason=bug))
    try:
        yield client
    finally:
        client.close()


class PeerBug(AssertionError):
    """A check Tansu 0.6 is known to fail (see `tidelog_only`)."""


def check(condition: bool, message: str) -> None:
    """An assertion that raises PeerBug: the one a tidelog_only test fails on Tansu."""
    if not condition:
        raise PeerBug(message)


def tidelog_only(request: pytest.FixtureRequest, broker: Broker, kit: Kit, bug: str) -> None:
    """Against Tansu this test must fail, and only at a `check` (a Tansu 0.6 bug, said
    in `bug`): every step and assertion before it must pass there."""
    if broker.kind == "tansu" and not isinstance(kit, AioKit):  # aiokafka: see `kit`
        mark = pytest.mark.xfail(strict=True, raises=PeerBug, reason=f"Tansu 0.6: {bug}")
        request.applymarker(mark)


NO_ABORTED_LIST = (
    "Fetch answers no aborted_transactions, so read_committed clients hand out an "
    "aborted transaction's records"
)


def topics(broker: Broker, prefix: str, count: int = 1, partitions: int = 1) -> list[str]:
    names = [f"txn-{prefix}-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    client = AdminClient({"bootstrap.servers": broker.bootstrap})
    futures = client.create_topics([NewTopic(n, partitions, 1) for n in names])
    for future in futures.values():
        future.result(timeout=30)
    return names


def txn_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def values(records: list[Record]) -> list[bytes]:
    return [value for _, value in records]


def up_to(last: bytes) -> Callable[[list[Record]], bool]:
    return lambda records: last in values(records)


def failure(steps: Callable[[], None]) -> BaseException:
    """The exception `steps` raises; AssertionError if it raises none."""
    try:
        steps()
    except Exception as exc:
        return exc
    raise AssertionError("expected an error, got none")


def test_committed_transaction_is_read_exactly_and_in_order(kit: Kit, broker: Broker) -> None:
    places = [(t, p) for t in topics(broker, "commit", count=2, partitions=3) for p in range(3)]
    sent = {place: [f"{place[0]}/{place[1]}/{i}".encode() for i in range(3)] for place in places}
    producer = kit.producer(txn_id("commit"))
    producer.init()
    producer.begin()
    for i in range(3):
        for topic, partition in places:
            producer.send(topic, partition, sent[topic, partition][i])
    producer.flush()
    producer.commit()
    plain = kit.producer(None)
    for topic, partition in places:
        plain.send(topic, partition, END)
    plain.flush()
    for topic, partition in places:
        # 3 records, the commit marker (a control record no client hands out) and END:
        # high watermark 5. END may land before the marker: EndTxn may answer first.
        got = kit.reader(topic, partition, committed=True).read_fetch(5)
        assert values(got) == [*sent[topic, partition], END]
        assert [offset for offset, _ in got][:3] == [0, 1, 2]


def test_aborted_transaction_is_invisible_read_committed(
    kit: Kit, broker: Broker, request: pytest.FixtureRequest
) -> None:
    tidelog_only(request, broker, kit, NO_ABORTED_LIST)
    (topic,) = topics(broker, "abort", partitions=2)
    producer = kit.producer(txn_id("abort"))
    producer.init()
    producer.begin()
    for partition in range(2):
        for i in range(3):
            producer.send(topic, partition, b"aborted-%d" % i)
    producer.flush()
    producer.abort()
    producer.begin()
    for partition in range(2):
        for i in range(3):
            producer.send(topic, partition, b"committed-%d" % i)
    producer.flush()
    producer.commit()
    committed = [b"committed-%d" % i for i in range(3)]
    for partition in range(2):
        raw = kit.reader(topic, partition, committed=False).read(up_to(committed[-1]))
        assert values(raw) == [b"aborted-0", b"aborted-1", b"aborted-2", *committed]
        # offset 3 is the abort marker: a control record, never handed out
        assert [offset for offset, _ in raw] == [0, 1, 2, 4, 5, 6]
    for partition in range(2):
        seen = kit.reader(topic, partition, committed=True).read(up_to(committed[-1]))
        check(values(seen) == committed, f"read_committed saw {seen}")


def open_transaction(kit: Kit, broker: Broker, prefix: str) -> tuple[str, Producer]:
    """A partition holding b"before" (offset 0), an open transaction's 3 records (1-3)
    and b"after" (4): its high watermark is 5, its last stable offset 1."""
    (topic,) = topics(broker, prefix)
    plain = kit.producer(None)
    plain.send(topic, 0, b"before")
    plain.flush()
    producer = kit.producer(txn_id(prefix))
    producer.init()
    producer.begin()
    for i in range(3):
        producer.send(topic, 0, b"txn-%d" % i)
    producer.flush()
    plain.send(topic, 0, b"after")
    plain.flush()
    return topic, producer


def test_open_transaction_holds_read_committed_until_commit(kit: Kit, broker: Broker) -> None:
    topic, producer = open_transaction(kit, broker, "open")
    committed = kit.reader(topic, 0, committed=True)
    uncommitted = kit.reader(topic, 0, committed=False)
    assert values(committed.read_fetch(5)) == [b"before"]
    assert values(uncommitted.read_fetch(5)) == [b"before", b"txn-0", b"txn-1", b"txn-2", b"after"]
    producer.commit()
    got = committed.read(up_to(b"after"))
    assert values(got) == [b"before", b"txn-0", b"txn-1", b"txn-2", b"after"]


def test_list_offsets_read_committed_answers_the_lso(
    kit: Kit, broker: Broker, request: pytest.FixtureRequest
) -> None:
    tidelog_only(
        request,
        broker,
        kit,
        "ListOffsets LATEST answers 0 read_committed, not the LSO (1), while a "
        "transaction is open (Fetch reports LSO 1 right); read_uncommitted it answers "
        "the last batch's base offset + 1, not the high watermark",
    )
    topic, producer = open_transaction(kit, broker, "lso")
    committed = kit.reader(topic, 0, committed=True)
    uncommitted = kit.reader(topic, 0, committed=False)
    ends = (committed.end_offset(), uncommitted.end_offset())
    check(ends == (1, 5), f"end offsets (read_committed, read_uncommitted) {ends}")
    producer.commit()
    # the commit marker is offset 5; markers may land just after EndTxn answers
    poll_until("read_committed end offset 6", lambda: committed.end_offset() == 6)
    assert uncommitted.end_offset() == 6


def test_consume_transform_produce_commits_offsets_with_the_txn(
    kit: Kit, broker: Broker, request: pytest.FixtureRequest
) -> None:
    tidelog_only(request, broker, kit, NO_ABORTED_LIST)
    source, sink = topics(broker, "ctp", count=2)
    plain = kit.producer(None)
    for i in range(6):
        plain.send(source, 0, b"in-%d" % i)
    plain.flush()
    group = kit.group(txn_id("ctp-group"), source)
    producer = kit.producer(txn_id("ctp"))
    producer.init()

    def transform(round_name: bytes, records: list[Record]) -> None:
        producer.begin()
        for _, value in records:
            producer.send(sink, 0, round_name + b":" + value)
        producer.flush()

    first = group.take(3)
    assert [offset for offset, _ in first] == [0, 1, 2]
    transform(b"r1", first)
    producer.send_offsets({(source, 0): 3}, group)
    producer.commit()
    poll_until("committed offset 3", lambda: group.committed(0) == 3)

    second = group.take(3)
    assert [offset for offset, _ in second] == [3, 4, 5]  # the input's end is 6
    transform(b"r2", second)
    producer.send_offsets({(source, 0): 6}, group)
    producer.abort()

    group.seek(0, 3)  # what an application does after an abort: back to the committed
    again = group.take(3)
    assert again == second
    transform(b"r3", again)  # its first send waited until the abort had completed
    assert group.committed(0) == 3, "the aborted transaction moved the committed offset"
    producer.send_offsets({(source, 0): 6}, group)
    producer.commit()
    poll_until("committed offset 6 (the input's end)", lambda: group.committed(0) == 6)

    raw = kit.reader(sink, 0, committed=False).read(up_to(b"r3:in-5"))
    rounds = [b"r%d:in-%d" % (r, i) for r, i in ((1, 0), (1, 1), (1, 2))]
    rounds += [b"r%d:in-%d" % (r, i) for r in (2, 3) for i in (3, 4, 5)]
    assert values(raw) == rounds
    out = kit.reader(sink, 0, committed=True).read(up_to(b"r3:in-5"))
    check(values(out) == rounds[:3] + rounds[6:], f"read_committed saw {out}")


def test_second_producer_with_the_same_id_fences_the_first(
    kit: Kit, broker: Broker, request: pytest.FixtureRequest
) -> None:
    tidelog_only(request, broker, kit, NO_ABORTED_LIST)
    (topic,) = topics(broker, "fence", partitions=2)
    same_id = txn_id("fence")
    first = kit.producer(same_id)
    first.init()
    first.begin()
    first.send(topic, 0, b"first-before")
    first.flush()
    second = kit.producer(same_id)
    second.init()  # aborts the first's open transaction and bumps the epoch

    def after_fencing() -> None:
        first.send(topic, 0, b"first-after")  # a partition already in its transaction
        first.send(topic, 1, b"first-after")  # and one it must add
        first.flush()
        first.commit()

    error = failure(after_fencing)
    assert kit.fenced(error), f"not a fencing error: {error!r}"
    second.begin()
    for partition in range(2):
        second.send(topic, partition, b"second")
    second.flush()
    second.commit()
    # the fenced sends never landed; the first's open transaction was aborted
    raw = [kit.reader(topic, p, committed=False).read(up_to(b"second")) for p in range(2)]
    assert [values(r) for r in raw] == [[b"first-before", b"second"], [b"second"]]
    for partition in range(2):
        got = kit.reader(topic, partition, committed=True).read(up_to(b"second"))
        check(values(got) == [b"second"], f"read_committed saw {got}")


def test_abandoned_transaction_is_aborted_after_its_timeout(
    kit: Kit, broker: Broker, request: pytest.FixtureRequest
) -> None:
    bug = "an abandoned transaction is never aborted (not in 60 s with a 3 s timeout)"
    tidelog_only(request, broker, kit, bug)
    (topic,) = topics(broker, "expire")
    producer = kit.producer(txn_id("expire"), timeout_ms=SHORT_TIMEOUT_MS)
    producer.init()
    producer.begin()
    for i in range(3):
        producer.send(topic, 0, b"abandoned-%d" % i)
    producer.flush()
    kit.close_one(producer)  # closed without commit or abort: only the timeout ends it
    plain = kit.producer(None)
    plain.send(topic, 0, END)
    plain.flush()
    reader = kit.reader(topic, 0, committed=True)
    try:
        got = reader.read(up_to(END), "the LSO past the abandoned transaction", EXPIRY_WAIT_S)
    except TimeoutError as exc:
        raise PeerBug(str(exc)) from exc
    raw = kit.reader(topic, 0, committed=False).read(up_to(END))
    assert values(raw) == [b"abandoned-0", b"abandoned-1", b"abandoned-2", END]
    check(values(got) == [END], f"read_committed saw {got}")


def test_timeout_above_the_broker_maximum_is_refused(kit: Kit, broker: Broker) -> None:
    if broker.kind == "tansu":
        pytest.skip("Tansu 0.6 has no maximum transaction timeout setting to exceed")
    producer = kit.producer(txn_id("too-long"), timeout_ms=MAX_TIMEOUT_MS + 1)
    error = failure(producer.init)
    assert kit.bad_timeout(error), f"not INVALID_TRANSACTION_TIMEOUT: {error!r}"
