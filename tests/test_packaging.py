"""
The wheel ships the twistd dropin in Twisted's plugin directory without an
C{__init__.py} that would clobber Twisted's own packages.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests.support.files import temporaryDirectory
from tests.support.twistd import twistdCommand

PROJECT = Path(__file__).resolve().parent.parent
WHICH_DROPIN = """
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
list(getPlugins(IServiceMaker))
import twisted.plugins.twisted_services_plugins as dropin
print(dropin.__file__)
"""


def buildWheel(outdir: str) -> Path:
    """Build the project's wheel into C{outdir} (offline: no build isolation)."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "build",
            "--wheel",
            "--no-isolation",
            "--outdir",
            outdir,
            str(PROJECT),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = Path(outdir).glob("*.whl")
    return wheel


@functools.cache
def builtWheel() -> Path:
    """The wheel, built once per test run (the build takes a second or two)."""
    outdir = tempfile.mkdtemp()
    atexit.register(shutil.rmtree, outdir, ignore_errors=True)
    return buildWheel(outdir)


class WheelLayoutTests(SynchronousTestCase):
    """The built wheel's file list, and twistd finding the dropin it installs."""

    def setUp(self) -> None:
        self.workdir = str(temporaryDirectory(self, "wheel-"))
        self.wheel = builtWheel()
        self.names = set(zipfile.ZipFile(self.wheel).namelist())

    def test_dropinShipped(self) -> None:
        """The dropin module is in twisted/plugins/."""
        self.assertIn("twisted/plugins/twisted_services_plugins.py", self.names)

    def test_noTwistedPackageInit(self) -> None:
        """Neither twisted/__init__.py nor twisted/plugins/__init__.py is shipped."""
        self.assertNotIn("twisted/__init__.py", self.names)
        self.assertNotIn("twisted/plugins/__init__.py", self.names)

    def test_onlyOurDropinUnderTwisted(self) -> None:
        """Nothing else under twisted/ (no stale dropin.cache) is shipped."""
        underTwisted = {name for name in self.names if name.startswith("twisted/")}
        self.assertEqual(underTwisted, {"twisted/plugins/twisted_services_plugins.py"})

    def test_packageShipped(self) -> None:
        """The import package and every service's tap module are shipped."""
        self.assertIn("twisted_services/__init__.py", self.names)
        for service in ("echo", "chat", "http", "temperature", "services"):
            self.assertIn(f"twisted_services/{service}/tap.py", self.names)

    def test_installedWheelListedByTwistd(self) -> None:
        """
        Installed from the wheel (not editable), the dropin is found by
        C{twistd --help}, which lists every service with its description.
        """
        target = Path(self.workdir) / "installed"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                str(target),
                str(self.wheel),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        env = {**os.environ, "PYTHONPATH": str(target)}
        result = subprocess.run(
            twistdCommand(["--help"]),
            cwd=target,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        # The editable install of the checkout is on sys.path too: make sure
        # the dropin twistd loaded is the installed copy.
        loaded = subprocess.run(
            [sys.executable, "-c", WHICH_DROPIN],
            cwd=target,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        self.assertTrue(loaded.stdout.strip().startswith(str(target)), loaded.stdout)
        self.assertIn("TCP (and optional UDP) echo server", result.stdout)
