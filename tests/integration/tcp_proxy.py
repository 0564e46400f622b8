"""Kept so the tests import from tests/: the proxy lives in broker/drills/tcp_proxy.py
(the drills cut it and count what a broker read through it)."""

from tidelog.broker.drills.tcp_proxy import TcpProxy

__all__ = ["TcpProxy"]
