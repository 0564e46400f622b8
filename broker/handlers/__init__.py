"""The handler table: one module per Kafka API. ApiVersions advertises exactly this."""

from tidelog.broker.handlers.add_offsets_to_txn import AddOffsetsToTxnHandler
from tidelog.broker.handlers.add_partitions_to_txn import AddPartitionsToTxnHandler
from tidelog.broker.handlers.alter_configs import AlterConfigsHandler
from tidelog.broker.handlers.alter_user_scram_credentials import AlterUserScramCredentialsHandler
from tidelog.broker.handlers.api_versions import ApiVersionsHandler
from tidelog.broker.handlers.base import Handler
from tidelog.broker.handlers.create_acls import CreateAclsHandler
from tidelog.broker.handlers.create_partitions import CreatePartitionsHandler
from tidelog.broker.handlers.create_topics import CreateTopicsHandler
from tidelog.broker.handlers.delete_acls import DeleteAclsHandler
from tidelog.broker.handlers.delete_groups import DeleteGroupsHandler
from tidelog.broker.handlers.delete_records import DeleteRecordsHandler
from tidelog.broker.handlers.delete_topics import DeleteTopicsHandler
from tidelog.broker.handlers.describe_acls import DescribeAclsHandler
from tidelog.broker.handlers.describe_cluster import DescribeClusterHandler
from tidelog.broker.handlers.describe_configs import DescribeConfigsHandler
from tidelog.broker.handlers.describe_groups import DescribeGroupsHandler
from tidelog.broker.handlers.describe_log_dirs import DescribeLogDirsHandler
from tidelog.broker.handlers.describe_producers import DescribeProducersHandler
from tidelog.broker.handlers.describe_transactions import DescribeTransactionsHandler
from tidelog.broker.handlers.describe_user_scram_credentials import (
    DescribeUserScramCredentialsHandler,
)
from tidelog.broker.handlers.end_txn import EndTxnHandler
from tidelog.broker.handlers.fetch import FetchHandler
from tidelog.broker.handlers.find_coordinator import FindCoordinatorHandler
from tidelog.broker.handlers.heartbeat import HeartbeatHandler
from tidelog.broker.handlers.incremental_alter_configs import IncrementalAlterConfigsHandler
from tidelog.broker.handlers.init_producer_id import InitProducerIdHandler
from tidelog.broker.handlers.join_group import JoinGroupHandler
from tidelog.broker.handlers.leave_group import LeaveGroupHandler
from tidelog.broker.handlers.list_groups import ListGroupsHandler
from tidelog.broker.handlers.list_offsets import ListOffsetsHandler
from tidelog.broker.handlers.list_transactions import ListTransactionsHandler
from tidelog.broker.handlers.metadata import MetadataHandler
from tidelog.broker.handlers.offset_commit import OffsetCommitHandler
from tidelog.broker.handlers.offset_delete import OffsetDeleteHandler
from tidelog.broker.handlers.offset_fetch import OffsetFetchHandler
from tidelog.broker.handlers.offset_for_leader_epoch import OffsetForLeaderEpochHandler
from tidelog.broker.handlers.produce import ProduceHandler
from tidelog.broker.handlers.sasl_authenticate import SaslAuthenticateHandler
from tidelog.broker.handlers.sasl_handshake import SaslHandshakeHandler
from tidelog.broker.handlers.sync_group import SyncGroupHandler
from tidelog.broker.handlers.txn_offset_commit import TxnOffsetCommitHandler
from tidelog.broker.handlers.write_txn_markers import WriteTxnMarkersHandler

HANDLERS: tuple[Handler, ...] = (
    ProduceHandler(),
    FetchHandler(),
    ListOffsetsHandler(),
    MetadataHandler(),
    FindCoordinatorHandler(),
    InitProducerIdHandler(),
    CreateTopicsHandler(),
    DeleteTopicsHandler(),
    DeleteRecordsHandler(),
    CreatePartitionsHandler(),
    DescribeConfigsHandler(),
    AlterConfigsHandler(),
    IncrementalAlterConfigsHandler(),
    ApiVersionsHandler(),
    SaslHandshakeHandler(),
    SaslAuthenticateHandler(),
    DescribeClusterHandler(),
    DescribeLogDirsHandler(),
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
    OffsetForLeaderEpochHandler(),
    AddPartitionsToTxnHandler(),
    AddOffsetsToTxnHandler(),
    EndTxnHandler(),
    WriteTxnMarkersHandler(),
    TxnOffsetCommitHandler(),
    DescribeProducersHandler(),
    DescribeTransactionsHandler(),
    ListTransactionsHandler(),
    DescribeUserScramCredentialsHandler(),
    AlterUserScramCredentialsHandler(),
    DescribeAclsHandler(),
    CreateAclsHandler(),
    DeleteAclsHandler(),
)

__all__ = ["HANDLERS", "Handler"]
