"""Where the project and its local state live, for every role of the tools."""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = PROJECT_ROOT / ".local"
"""The local stack's state: the embedded database, flags, logs (git-ignored)."""
