from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from delivery.simulator import Api


def _read_request(conn: socket.socket) -> None:
    """Read one whole request: its head and body may arrive in separate segments, and closing with
    some unread would reset the connection before the answer is read (a different failure)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        ),
        0,
    )
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            return
        body += chunk


@pytest.fixture
def cut_short_then_whole() -> Iterator[tuple[str, list[int]]]:
    """A server whose first answer breaks off mid-body (its process died) and whose next is whole."""
    listener = socket.create_server(("127.0.0.1", 0))
    connections: list[int] = []

    def serve() -> None:
        for answer in (b'{"status": "o', b'{"status": "ok"}'):
            conn, _ = listener.accept()
            connections.append(conn.fileno())
            _read_request(conn)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n" + answer
            )
            if len(answer) < 16:
                conn.close()
            else:
                conn.recv(1)  # until the client is done with the connection

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}", connections
    listener.close()


def test_an_answer_cut_short_is_a_connection_error_and_is_not_sent_again(
    cut_short_then_whole: tuple[str, list[int]],
) -> None:
    server, connections = cut_short_then_whole
    api = Api(server, timeout=5)
    # The request may have been carried out: the device is told the connection broke, and does not
    # send it again on its own.
    with pytest.raises(ConnectionError):
        api.post("check-in", {})
    assert len(connections) == 1
    # The broken connection is dropped: the next call opens a new one and gets its answer.
    assert api.post("check-in", {}) == {"status": "ok"}
    assert len(connections) == 2
