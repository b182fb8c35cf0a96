"""
The wheel ships the twistd dropin in Twisted's plugin directory without an
C{__init__.py} that would clobber Twisted's own packages, the MIT licence,
and the systemd units with the command that writes them for an install.
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
from tests.systemd.test_units import runAnalyze, systemdAnalyze
from twisted_services.systemd.units import installedTwistd

PROJECT = Path(__file__).resolve().parent.parent
UNIT_SUFFIXES = (".service", ".socket")
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


def installWheel(wheel: Path, target: Path) -> dict[str, str]:
    """
    Install C{wheel} (without its dependencies, which this environment has)
    into C{target}; return the environment that imports from there first.
    """
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
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return {**os.environ, "PYTHONPATH": str(target)}


@functools.cache
def installedWheel() -> tuple[Path, dict[str, str]]:
    """
    L{builtWheel} installed once per test run, which the tests only read
    (pip takes a second or two): its directory, and the environment that
    imports from there first.
    """
    target = Path(tempfile.mkdtemp()) / "installed"
    atexit.register(shutil.rmtree, target.parent, ignore_errors=True)
    return target, installWheel(builtWheel(), target)


class WheelLayoutTests(SynchronousTestCase):
    """The built wheel's file list, and twistd finding the dropin it installs."""

    def setUp(self) -> None:
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

    def test_licenseShipped(self) -> None:
        """The MIT licence that C{pyproject.toml} declares is in the wheel."""
        wheel = zipfile.ZipFile(self.wheel)
        [license] = [n for n in self.names if n.endswith(".dist-info/licenses/LICENSE")]
        self.assertTrue(wheel.read(license).startswith(b"MIT License\n"))
        metadata = next(n for n in self.names if n.endswith(".dist-info/METADATA"))
        self.assertIn(b"License-Expression: MIT\n", wheel.read(metadata))

    def test_unitsShipped(self) -> None:
        """Every systemd unit of the source tree is in the wheel."""
        shipped = PROJECT / "twisted_services" / "systemd" / "unitfiles"
        units = {p.name for p in shipped.iterdir() if p.suffix in UNIT_SUFFIXES}
        self.assertEqual(len(units), 13)
        for name in units:
            self.assertIn(f"twisted_services/systemd/unitfiles/{name}", self.names)

    def test_installedWheelListedByTwistd(self) -> None:
        """
        Installed from the wheel (not editable), the dropin is found by
        C{twistd --help}, which lists every service with its description.
        """
        target, env = installedWheel()
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


class UnitsFromWheelTests(SynchronousTestCase):
    """
    C{twisted-services-units DIRECTORY}, installed from the wheel, writes
    the units for that install's C{twistd}: the deploy steps need no clone.
    """

    def setUp(self) -> None:
        target, self.env = installedWheel()
        self.units = temporaryDirectory(self, "units-") / "etc" / "systemd" / "system"
        self.result = subprocess.run(
            [str(target / "bin" / "twisted-services-units"), str(self.units)],
            cwd=target,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(self.result.returncode, 0, self.result.stderr)

    def test_writesEveryUnit(self) -> None:
        """
        Every shipped unit is written, each path printed, and every service
        runs the C{twistd} next to this interpreter.
        """
        written = sorted(self.units.iterdir())
        self.assertEqual(len(written), 13)
        self.assertEqual(self.result.stdout.split(), [str(p) for p in written])
        twistd = installedTwistd()
        self.assertTrue(twistd.is_file(), twistd)
        for path in written:
            if path.suffix == ".service":
                self.assertIn(f"\nExecStart={twistd} -n ", path.read_text())
                self.assertNotIn("/usr/local/bin/twistd", path.read_text())

    def test_unitsVerify(self) -> None:
        """C{systemd-analyze verify} accepts the units as written."""
        systemdAnalyze()
        paths = [str(p) for p in sorted(self.units.iterdir())]
        result = runAnalyze(["verify", "--man=no", "--recursive-errors=no", *paths])
        ours = [
            line for line in result.stderr.splitlines() if "twisted-services" in line
        ]
        self.assertEqual((result.returncode, ours), (0, []), result.stderr)

    def test_missingTwistd(self) -> None:
        """A C{--twistd} that does not exist is a usage error naming it."""
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "twisted_services.systemd.units",
                "--twistd",
                "/nonexistent/twistd",
                str(self.units / "more"),
            ],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 2)
        self.assertIn("no twistd at /nonexistent/twistd", result.stderr)
        self.assertFalse((self.units / "more").exists())
