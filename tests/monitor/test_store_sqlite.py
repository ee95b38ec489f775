"""The store contract on SQLite, plus what only a file can show: crash safety, pragmas."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from _store_contract import *  # noqa: F403 - the shared contract tests run here too

from tegkit.monitor.readings import Reading
from tegkit.monitor.store import AsyncStore, open_store
from tegkit.monitor.store.sqlite import SqliteStore


@pytest.fixture
def backend() -> str:
    return "sqlite"
