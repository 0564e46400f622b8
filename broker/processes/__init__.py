"""Child processes on loopback: one way to start one, know it is ready, stop it, kill it.

child.py (`free_port`, `ChildProcess`), serve.py (`BrokerProcess`: `tidelog serve`),
s3_servers.py (moto's server and SeaweedFS), tansu.py (the peer broker). Drills,
payments, benchmarks and tests start their processes here. This package imports nothing
else from tidelog, so payments (which never imports broker code) may use it.
"""

from tidelog.broker.processes.child import (
    ChildProcess,
    ChildStartError,
    free_port,
    free_ports,
    port_accepts,
)
from tidelog.broker.processes.serve import BrokerProcess

__all__ = [
    "BrokerProcess",
    "ChildProcess",
    "ChildStartError",
    "free_port",
    "free_ports",
    "port_accepts",
]
