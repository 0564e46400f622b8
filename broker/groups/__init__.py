"""The classic group coordinator: a pure state machine and its thin driver.

model.py (the data), events.py (what goes in and comes out), state.py (the
transitions: `handle(group, event, now_ms, config) -> effects`), protocol_vote.py,
queries.py (read-only checks and views), coordinator.py (the driver: timers, the
offsets store, answers to handlers). docs/group-coordinator.md says why.
"""
