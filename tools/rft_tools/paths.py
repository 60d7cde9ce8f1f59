"""Where the project and its local state live, for every role of the tools."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = Path(os.environ.get("RFT_LOCAL_DIR") or PROJECT_ROOT / ".local")
"""The local stack's state: the embedded database, flags, logs (git-ignored).

``RFT_LOCAL_DIR`` moves it: the stacks tests start keep theirs apart, so a test run
never points ``rft backfill`` at its own queues, nor shares localstripe's store, while
``make run`` is going."""
