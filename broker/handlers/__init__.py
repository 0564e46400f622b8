"""The handler table: one module per Kafka API. ApiVersions advertises exactly this."""

from broker.handlers.api_versions import ApiVersionsHandler
from broker.handlers.base import Handler
from broker.handlers.create_partitions import CreatePartitionsHandler
from broker.handlers.create_topics import CreateTopicsHandler
from broker.handlers.delete_groups import DeleteGroupsHandler
from broker.handlers.delete_topics import DeleteTopicsHandler
from broker.handlers.describe_cluster import DescribeClusterHandler
from broker.handlers.describe_configs import DescribeConfigsHandler
from broker.handlers.describe_groups import DescribeGroupsHandler
from broker.handlers.fetch import FetchHandler
from broker.handlers.find_coordinator import FindCoordinatorHandler
from broker.handlers.heartbeat import HeartbeatHandler
from broker.handlers.init_producer_id import InitProducerIdHandler
from broker.handlers.join_group import JoinGroupHandler
from broker.handlers.leave_group import LeaveGroupHandler
from broker.handlers.list_groups import ListGroupsHandler
from broker.handlers.list_offsets import ListOffsetsHandler
from broker.handlers.metadata import MetadataHandler
from broker.handlers.offset_commit import OffsetCommitHandler
from broker.handlers.offset_delete import OffsetDeleteHandler
from broker.handlers.offset_fetch import OffsetFetchHandler
from broker.handlers.produce import ProduceHandler
from broker.handlers.sync_group import SyncGroupHandler

HANDLERS: tuple[Handler, ...] = (
    ProduceHandler(),
    FetchHandler(),
    ListOffsetsHandler(),
    MetadataHandler(),
    FindCoordinatorHandler(),
    InitProducerIdHandler(),
    CreateTopicsHandler(),
    DeleteTopicsHandler(),
    CreatePartitionsHandler(),
    DescribeConfigsHandler(),
    ApiVersionsHandler(),
    DescribeClusterHandler(),
    JoinGroupHandler(),
    HeartbeatHandler(),
    LeaveGroupHandler(),
    SyncGroupHandler(),
    OffsetCommitHandler(),
    OffsetFetchHandler(),
    ListGroupsHandler(),
    DescribeGroupsHandler(),
    DeleteGroupsHandler(),
    OffsetDeleteHandler(),
)

__all__ = ["HANDLERS", "Handler"]
