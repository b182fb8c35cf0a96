"""
Temporary directories for tests that need real files or UNIX sockets.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase


def temporaryDirectory(testCase: SynchronousTestCase, prefix: str = "test-") -> Path:
    """
    A new directory in the system's temporary directory, removed with all
    it holds when C{testCase} ends.

    Not C{testCase.mktemp()}: under pytest that makes directories in the
    checkout, and its long paths do not fit a UNIX socket address (about
    100 bytes).
    """
    directory = tempfile.mkdtemp(prefix=prefix)
    testCase.addCleanup(shutil.rmtree, directory, True)
    return Path(directory)
