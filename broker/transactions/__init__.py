"""The transaction coordinator: a pure state machine and (later) its thin driver.

model.py (the data: `TxnStatus`, `TxnMeta` and its JSON form in the coordinator's
stream), state.py (the transitions: InitProducerId, AddPartitionsToTxn,
AddOffsetsToTxn, EndTxn, the timeout, recovery after a move, and the verification
partition leaders and TxnOffsetCommit ask for). The driver (coordinator.py) owns locks,
persistence, marker writing and the timer; notes/txn-spec.md is the design.
"""
