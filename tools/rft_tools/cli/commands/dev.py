"""``rft dev token --role ROLE [--id N] [--email E] [--sub S] [--ttl SECONDS]``: a token
for the local stack.

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

from rft_common.db.tables import USER_ROLES
from rft_common.staff.tokens import issue_access_token
from rft_tools.local.admin import LOCAL_ADMIN_JWT_SECRET

MAX_TTL_SECONDS = 7 * 24 * 3600


def register(subcommands: argparse._SubParsersAction) -> None:
    dev = subcommands.add_parser("dev", help="conveniences for the local stack")
    actions = dev.add_subparsers(dest="action", required=True)
    token = actions.add_parser(
        "token", help="print a token signed with the local stack's admin secret"
    )
    token.add_argument("--role", required=True, choices=USER_ROLES)
    token.add_argument("--id", type=int, default=1, help="the staff member's user id (audit)")
    token.add_argument(
        "--email", default="local-admin@example.com", help="the staff member's email (audit)"
    )
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
    print(
        issue_access_token(
            LOCAL_ADMIN_JWT_SECRET,
            user_id=arguments.id,
            email=arguments.email,
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
