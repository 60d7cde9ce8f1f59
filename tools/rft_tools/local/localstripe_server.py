"""localstripe's server, listening on 127.0.0.1 only, its store pickled to a file we name.

localstripe itself binds ``::`` (every interface) and pickles its whole store (customers'
names, emails and phones) to a fixed ``/tmp/localstripe.pickle`` shared by every stack on
the machine, readable by all. Neither is an option, so this entry point replaces the two:
``python -m rft_tools.local.localstripe_server --port N --store PATH``. The store always
starts empty (like ``--from-scratch``) and is written with mode 0600.
"""

from __future__ import annotations

import argparse
import logging
import os
import pickle
import socket
from pathlib import Path

from aiohttp import web
from localstripe import resources, server


def store_writer(path: Path):
    """localstripe's ``Store.dump_to_disk``, to ``path``, readable by its owner only."""

    def dump_to_disk(store: resources.Store) -> None:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            pickle.dump(store, file, protocol=pickle.HIGHEST_PROTOCOL)

    return dump_to_disk


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True)
    arguments = parser.parse_args()
    resources.Store.dump_to_disk = store_writer(arguments.store)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", arguments.port))
    access_log = logging.getLogger("aiohttp.access")
    access_log.setLevel(logging.DEBUG)
    access_log.addHandler(logging.StreamHandler())
    web.run_app(server.app, sock=listener, access_log=access_log, print=None)


if __name__ == "__main__":
    main()
