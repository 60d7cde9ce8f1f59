"""``rft staff create --email E --name N --role admin|instructor``: a staff login.

The password is asked for twice on a terminal, or read from the first line of
standard input otherwise (``printf '%s\\n' "$PASSWORD" | rft staff create ...``), so it
never appears in the shell history or the process list. An existing staff member
with that email gets the new name, role and password and is reactivated (which ends
their sessions); an email that belongs to a customer is refused. The database is
``DATABASE_URL``, or the local stack's.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from rft_common.core.errors import DomainError
from rft_common.core.vocabulary import STAFF_ROLES
from rft_common.db.postgres import transaction_at
from rft_tools.local.db import local_database


def register(subcommands: argparse._SubParsersAction) -> None:
    staff = subcommands.add_parser("staff", help="staff logins for the admin dashboard")
    verbs = staff.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser(
        "create", help="create a staff member who can sign in (or reset their password)"
    )
    create.add_argument("--email", required=True, type=_given)
    create.add_argument("--name", required=True, type=_given)
    create.add_argument("--role", required=True, choices=STAFF_ROLES)
    create.set_defaults(handler=_create)


def _given(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("is empty")
    return value


def _read_password() -> str | None:
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != password:
        return None
    return password


def _create(arguments: argparse.Namespace) -> int:
    from rft_common.staff.service import save_staff_member

    password = _read_password()
    if password is None:
        print("rft staff create: the passwords differ", file=sys.stderr)
        return 2
    if not password:
        print(
            "rft staff create: no password given: type it when asked, or pipe it as the "
            "first line of standard input",
            file=sys.stderr,
        )
        return 2
    with local_database() as url:
        try:
            with transaction_at(url) as connection:
                user_id, created = save_staff_member(
                    connection,
                    email=arguments.email,
                    name=arguments.name,
                    role=arguments.role,
                    password=password,
                )
        except DomainError as refusal:
            print(f"rft staff create: {refusal.message}", file=sys.stderr)
            return 2
    print(json.dumps({"id": user_id, "role": arguments.role, "created": created}))
    return 0
