"""Which protocol (assignor) a classic group uses: Kafka's vote.

Owns: the candidate set (protocols every member supports) and the vote among them.
Each member votes for its most preferred candidate; the protocol with most votes wins.

Guarantees: the result is supported by every member. Kafka breaks ties by hash-map
order; here a tie goes to the protocol with the best summed rank over all members'
preference lists, then to the smaller name, so the choice never depends on dict order.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence


def common_protocols(preferences: Sequence[Sequence[str]]) -> set[str]:
    """Names every member lists; an empty group supports nothing in particular."""
    if not preferences:
        return set()
    common = set(preferences[0])
    for names in preferences[1:]:
        common.intersection_update(names)
    return common


def select_protocol(preferences: Sequence[Sequence[str]]) -> str:
    """Kafka's vote over members' protocol names (most preferred first)."""
    candidates = common_protocols(preferences)
    if not candidates:
        raise ValueError(f"no protocol is supported by all members members={len(preferences)}")
    votes = Counter(_first_candidate(names, candidates) for names in preferences)
    return min(candidates, key=lambda name: (-votes[name], _rank_sum(name, preferences), name))


def _first_candidate(names: Sequence[str], candidates: set[str]) -> str:
    return next(name for name in names if name in candidates)


def _rank_sum(name: str, preferences: Sequence[Sequence[str]]) -> int:
    return sum(list(names).index(name) for names in preferences)
