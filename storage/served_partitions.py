"""Which keys this broker serves: those the metadata log assigns to our stream and that
our stream adopted for that very assignment.

Owns: the table of partitions served now (`PartitionLog`s, by key), our own stream
once we joined, and the answer for a partition we do not lead.

Guarantees: a partition is in the table only while `serves` holds for it, with the
very state our stream folded; one dropped from the table wakes its waiters, so no
fetch or produce waits on a partition we gave up.
"""

from __future__ import annotations

from collections.abc import Callable

from tidelog.protocol.errors import ErrorCode
from tidelog.storage.commit_log import CommitLog
from tidelog.storage.errors import StoreError
from tidelog.storage.lease import Lease
from tidelog.storage.meta_state import MetaState
from tidelog.storage.partition_log import PartitionLog
from tidelog.storage.stream_state import PartitionKey, StreamState


class ServedPartitions:
    def __init__(
        self,
        meta: CommitLog[MetaState],
        stream: CommitLog[StreamState],
        lease: Lease,
        *,
        exists: Callable[[PartitionKey], bool],
        poke: Callable[[], None],
    ) -> None:
        self._meta = meta
        self.stream = stream  # our own stream; a placeholder until we joined
        self.stream_id = ""
        self._lease = lease
        self._exists = exists
        self._poke = poke
        self.partitions: dict[PartitionKey, PartitionLog] = {}

    def serves(self, key: PartitionKey) -> bool:
        owner = self._meta.state.owners.get(key)
        return (
            owner is not None
            and owner.stream == self.stream_id
            and self.stream.state.tenures.get(key) == owner.seq
        )

    def sync(self) -> bool:
        """Serve exactly what we lead; whether a partition was dropped (deleted, moved),
        whose unuploaded bytes the backlog must stop counting."""
        meta, mine = self._meta.state, self.stream.state
        dropped = False
        for key in list(self.partitions):
            cur = mine.partitions.get(key)
            if not self.serves(key) or cur is not self.partitions[key].state:
                self.partitions.pop(key).wake_all()
                dropped = True
        for key, pstate in mine.partitions.items():
            topic = meta.topics.get(key[0])
            if (
                key not in self.partitions
                and self.serves(key)
                and topic is not None
                and topic.topic_id == pstate.topic_id
            ):
                self.partitions[key] = PartitionLog(pstate)
        return dropped

    def leader_of(self, topic: str, partition: int) -> PartitionLog:
        """The partition if this broker leads it; NOT_LEADER_OR_FOLLOWER if another does."""
        part = self.partitions.get((topic, partition))
        if part is not None and not self._lease.fenced:
            return part
        if not self._exists((topic, partition)):
            raise StoreError(
                ErrorCode.unknown_topic_or_partition,
                f"unknown topic or partition topic={topic} partition={partition}",
            )
        self._poke()  # it may have just been assigned to us
        raise StoreError(
            ErrorCode.not_leader_or_follower,
            f"not the leader of topic={topic} partition={partition}",
        )
