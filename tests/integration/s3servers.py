"""Kept so tests and benches import from tests/: the S3 servers live in
broker/drills/s3_servers.py (the `tidelog drill --store s3` CLI starts them too)."""

from tidelog.broker.drills.s3_servers import (
    ACCESS_KEY,
    REGION,
    SECRET_KEY,
    S3Server,
    free_ports,
    running_moto,
    running_seaweedfs,
)

__all__ = [
    "ACCESS_KEY",
    "REGION",
    "SECRET_KEY",
    "S3Server",
    "free_ports",
    "running_moto",
    "running_seaweedfs",
]
