"""``make run`` on a port something else holds: one line naming the port and PORT=."""

from __future__ import annotations

import socket

import pytest

from rft_tools.cli.main import main


def test_a_taken_port_is_refused_in_one_line_naming_it_and_port(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        with pytest.raises(SystemExit) as refused:
            main(["run", "--port", str(port)])
    message = str(refused.value.code)
    assert "\n" not in message
    assert str(port) in message
    assert "PORT=" in message
