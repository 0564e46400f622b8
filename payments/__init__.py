"""The payments CQRS reference application, running over tidelog.

Owns: commands and their state machine (`state_machine`), the SQLite write model with
its transactional outbox (`write_model`), the relay that publishes the outbox
(`outbox_relay`), the versioned event schema (`events`), the projections and their
runner (`projections`, `projection_runner`), the exactly-once receipts stage
(`process_manager`), the verifier, the HTTP read API and the `tidelog payments` command
line.

Guarantee: this package talks to the broker only through confluent-kafka, exactly as a
real payments team's services would. It never imports `broker`, `storage` or `protocol`
code; the embedded broker is a subprocess started by `tidelog.broker.processes`, which
imports nothing else of tidelog (tests/unit/test_process_boundaries.py).
"""
