"""A stateful quixstreams app with exactly-once processing, run as a subprocess by
tests/integration/test_quixstreams_eos.py (issue 13).

Owns: reading `input` (key = account id as a string, value = an integer as JSON),
keeping per key a running count and sum in its state store (backed by a changelog
topic that quixstreams creates), and emitting {"key", "seq", "sum"} as JSON to `output`
for every input record: `seq` is how many records of that key the app has applied
(1 for the first), `sum` the sum of their values. Under exactly-once, output records,
changelog writes and consumer offsets commit in one Kafka transaction per checkpoint,
so a crash at any moment may neither duplicate nor drop an output nor apply an input
to the state twice.

The transactional id is fixed per app name, so a restarted app fences its killed
predecessor and aborts its open transaction at once (InitProducerId), rather than
leaving it open until the transaction timeout.

    python tests/integration/quix_app.py BOOTSTRAP INPUT OUTPUT APP_NAME STATE_DIR

QUIX_APP_LOGLEVEL=DEBUG shows its rebalances and checkpoints in the log.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Literal

from quixstreams import Application, State

COMMIT_INTERVAL_S = 0.3
# Fast group and transaction settings: a killed member's partitions move after the
# broker's minimum session timeout, a restarted broker is reconnected to within half a
# second (librdkafka backs off up to 10 s by default), and a transaction whose producer
# is gone for good is aborted by the coordinator within seconds.
RECONNECT = {"reconnect.backoff.max.ms": 500}
CONSUMER_CONFIG = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 500, **RECONNECT}
TRANSACTION_TIMEOUT_MS = 10000
LOG_LEVELS: dict[str, Literal["DEBUG", "INFO"]] = {"DEBUG": "DEBUG", "INFO": "INFO"}


def running_sum(value: Any, key: Any, timestamp: int, headers: Any, state: State[str, int]) -> Any:
    """Apply one input to the key's state; the output record for it."""
    seq = int(state.get("seq", 0)) + 1
    total = int(state.get("sum", 0)) + int(value)
    state.set("seq", seq)
    state.set("sum", total)
    return {"key": str(key), "seq": seq, "sum": total}


def build(
    bootstrap: str, input_topic: str, output_topic: str, name: str, state_dir: str
) -> Application:
    """The Application, its dataframe wired from input to output."""
    app = Application(
        broker_address=bootstrap,
        consumer_group=name,
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        commit_interval=COMMIT_INTERVAL_S,
        state_dir=state_dir,
        consumer_extra_config=CONSUMER_CONFIG,
        producer_extra_config={
            "transactional.id": f"{name}-txn",
            "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
            **RECONNECT,
        },
        loglevel=LOG_LEVELS[os.environ.get("QUIX_APP_LOGLEVEL", "INFO")],
    )
    source = app.topic(input_topic, key_deserializer="str", value_deserializer="json")
    sink = app.topic(output_topic, key_serializer="str", value_serializer="json")
    sdf = app.dataframe(source)
    sdf = sdf.apply(running_sum, stateful=True, metadata=True)
    sdf.to_topic(sink)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("bootstrap", "input", "output", "name", "state_dir"):
        parser.add_argument(name)
    args = parser.parse_args(argv)
    app = build(args.bootstrap, args.input, args.output, args.name, args.state_dir)
    app.run()


if __name__ == "__main__":
    main()
