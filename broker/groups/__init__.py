"""The classic group coordinator: a pure state machine and its thin driver.

model.py (the data), events.py (what goes in and comes out), state.py (the entry
point: `handle(group, event, now_ms, config) -> effects`), the transitions it
dispatches to (join.py, sync.py, membership.py, timers.py, all ending in rebalance.py;
step.py is one call's context), protocol_vote.py, queries.py (read-only checks and
views), coordinator.py (the driver: timers, the offsets store, answers to handlers).
docs/group-coordinator.md says why.
"""
