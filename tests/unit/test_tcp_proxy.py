"""The drills' and tests' TCP proxy passes bytes and passes a close on, both ways."""

from __future__ import annotations

import socket
import threading

from tidelog.broker.drills.tcp_proxy import TcpProxy


def _server_that_answers_once_then_closes() -> tuple[socket.socket, threading.Thread]:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.sendall(conn.recv(100).upper())
        # leaving the block closes the server side of the connection

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_a_server_close_reaches_the_client_as_end_of_stream() -> None:
    """A server closing a keep-alive connection must look closed to the client; a proxy
    that only close()s its sockets leaves the client waiting on a half-dead connection."""
    listener, thread = _server_that_answers_once_then_closes()
    proxy = TcpProxy("127.0.0.1", listener.getsockname()[1])
    try:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            client.sendall(b"hello")
            assert client.recv(100) == b"HELLO"
            thread.join(10)
            assert client.recv(100) == b""  # EOF, not a socket.timeout after 10 s
        assert proxy.bytes_up == 5 and proxy.bytes_down == 5
    finally:
        proxy.close()
        listener.close()


def test_cut_drops_open_connections_and_refuses_new_ones_until_restored() -> None:
    listener, _ = _server_that_answers_once_then_closes()
    proxy = TcpProxy("127.0.0.1", listener.getsockname()[1])
    try:
        proxy.cut()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            assert client.recv(100) == b""
        proxy.restore()
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as client:
            client.sendall(b"again")
            assert client.recv(100) == b"AGAIN"
    finally:
        proxy.close()
        listener.close()
