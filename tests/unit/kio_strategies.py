"""Hypothesis strategies for kio's types that kio itself leaves out or gets wrong.

Importing this module registers them (hypothesis keeps one global registry),
so every test that draws kio entities with ``st.from_type`` imports it.
"""

from __future__ import annotations

import datetime

from hypothesis import strategies as st
from kio.static.primitive import Records, i64Timedelta

# kio registers hypothesis strategies for its primitives, but not for the
# opaque record-set bytes.
st.register_type_strategy(Records, st.binary(max_size=64).map(Records))
# kio 0.6.5 cannot round-trip every int64-millisecond timedelta its own
# strategy draws: the writer goes through float seconds (precision lost above
# 2**53 microseconds) and the native reader overflows above 2**63 // 1000 ms.
# Real clients send -1 or small values in these fields.
I64_MS_LIMIT = 2**53 // 1000
st.register_type_strategy(
    i64Timedelta,
    st.integers(-I64_MS_LIMIT, I64_MS_LIMIT).map(
        lambda ms: i64Timedelta.parse(datetime.timedelta(milliseconds=ms))
    ),
)
