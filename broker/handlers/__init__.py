"""The handler table: one module per Kafka API. ApiVersions advertises exactly this."""

from broker.handlers.api_versions import ApiVersionsHandler
from broker.handlers.base import Handler
from broker.handlers.create_partitions import CreatePartitionsHandler
from broker.handlers.create_topics import CreateTopicsHandler
from broker.handlers.delete_topics import DeleteTopicsHandler
from broker.handlers.describe_cluster import DescribeClusterHandler
from broker.handlers.describe_configs import DescribeConfigsHandler
from broker.handlers.fetch import FetchHandler
from broker.handlers.find_coordinator import FindCoordinatorHandler
from broker.handlers.init_producer_id import InitProducerIdHandler
from broker.handlers.list_offsets import ListOffsetsHandler
from broker.handlers.metadata import MetadataHandler
from broker.handlers.produce import ProduceHandler

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
)

__all__ = ["HANDLERS", "Handler"]
