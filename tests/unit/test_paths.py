from hypothesis import given
from hypothesis import strategies as st

from tidelog.storage import paths


@given(st.integers(min_value=0, max_value=paths.MAX_SEQ))
def test_commit_key_round_trips(seq: int) -> None:
    assert paths.META.parse_commit_key(paths.META.commit_key(seq)) == seq


@given(st.integers(min_value=0, max_value=paths.MAX_SEQ))
def test_snapshot_key_round_trips(seq: int) -> None:
    assert paths.META.parse_snapshot_key(paths.META.snapshot_key(seq)) == seq


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**12))
def test_lexical_order_of_commit_keys_is_numeric_order(a: int, b: int) -> None:
    assert (paths.META.commit_key(a) < paths.META.commit_key(b)) == (a < b)


def test_foreign_keys_are_rejected() -> None:
    for bad in ("log/12.tlc", "snapshots/00000000000000000001.tlc", "log/0000000000000000000x.tlc"):
        try:
            paths.META.parse_commit_key(bad)
        except ValueError:
            continue
        raise AssertionError(f"accepted {bad}")


def test_a_stream_commit_key_is_its_layouts_key() -> None:
    stream = paths.stream_id(3, 41)
    assert paths.parse_stream_id(stream) == (3, 41)
    key = paths.stream_commit_key(stream, 7)
    assert key == paths.stream_layout(stream).commit_key(7)
    assert paths.stream_layout(stream).parse_commit_key(key) == 7
