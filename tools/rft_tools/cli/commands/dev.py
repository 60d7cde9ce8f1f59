"""``rft dev token --role ROLE [--id N] [--email E] [--sub S] [--ttl SECONDS]``: a token
for the local stack.

Without ``--id`` it acts as the local stack's staff member of that role
(``local-admin@example.com``, ...: ``rft_tools.local.admin.local_staff``, created in the
local database, or ``DATABASE_URL``'s, if missing); a customer's token needs ``--id``.

It is signed with the local stack's fixed admin secret, in the admin login's format
(``id``, ``email``, ``role``, issuer and audience; ``sub`` only when asked for),
and printed on its own line (``TOKEN=$(rft dev token --role admin)``). It refuses, with
exit status 2, when this shell is configured for another secret: a token from here
must never work anywhere but on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys

from rft_common.core.vocabulary import STAFF_ROLES
from rft_common.db.postgres import transaction_at
from rft_common.staff.tokens import issue_access_token
from rft_tools.local.admin import LOCAL_ADMIN_JWT_SECRET, local_staff, local_staff_email

MAX_TTL_SECONDS = 7 * 24 * 3600


def register(subcommands: argparse._SubParsersAction) -> None:
    dev = subcommands.add_parser("dev", help="conveniences for the local stack")
    actions = dev.add_subparsers(dest="action", required=True)
    token = actions.add_parser(
        "token", help="print a token signed with the local stack's admin secret"
    )
    token.add_argument("--role", required=True, choices=("customer", *STAFF_ROLES))
    token.add_argument(
        "--id", type=int, help="the user id (audit); by default the stack's staff member's"
    )
    token.add_argument("--email", help="the email (audit); by default local-ROLE@example.com")
    token.add_argument("--sub", help="an optional sub claim (the admin API does not need one)")
    token.add_argument("--ttl", type=_seconds, default=3600, help="lifetime in seconds")
    token.set_defaults(handler=_token)


def _seconds(value: str) -> int:
    seconds = int(value)
    if not 1 <= seconds <= MAX_TTL_SECONDS:
        raise argparse.ArgumentTypeError(f"between 1 and {MAX_TTL_SECONDS} seconds")
    return seconds


def _token(arguments: argparse.Namespace) -> int:
    if os.environ.get("ADMIN_JWT_SECRET_ARN"):
        return _refuse("ADMIN_JWT_SECRET_ARN is set: the admin secret is in Secrets Manager")
    if os.environ.get("ADMIN_JWT_SECRET", LOCAL_ADMIN_JWT_SECRET) != LOCAL_ADMIN_JWT_SECRET:
        return _refuse("ADMIN_JWT_SECRET is set to a secret that is not the local stack's")
    user_id = arguments.id
    if user_id is None:
        if arguments.role not in STAFF_ROLES:
            print(f"rft dev token: a {arguments.role} token needs --id", file=sys.stderr)
            return 2
        # Here, not at the top: the embedded database's module loads SQLAlchemy (1-2 s).
        from rft_tools.local.db import local_database

        with local_database() as url, transaction_at(url) as connection:
            user_id = local_staff(connection)[arguments.role]
    print(
        issue_access_token(
            LOCAL_ADMIN_JWT_SECRET,
            user_id=user_id,
            email=arguments.email or local_staff_email(arguments.role),
            role=arguments.role,
            token_version=0,  # a local user whose password, role and state never changed
            ttl_seconds=arguments.ttl,
            **({"sub": arguments.sub} if arguments.sub else {}),
        )
    )
    return 0


def _refuse(reason: str) -> int:
    print(
        f"rft dev token: refusing: {reason}. It only signs tokens for the local stack; "
        "unset the variable to use it.",
        file=sys.stderr,
    )
    return 2
