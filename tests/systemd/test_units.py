"""
The systemd units in C{twisted_services/systemd/unitfiles/}, checked by
systemd's own tools: C{systemd-analyze verify} accepts every unit, and
C{systemd-analyze security} rates every service unit's exposure at most L{MAX_EXPOSURE}.

C{verify} insists that C{ExecStart=}'s program exists, and the units name
C{/usr/local/bin/twistd}, where a system-wide install puts it; so the units
are checked in a temporary copy whose C{ExecStart=} names this environment's
C{twistd} instead. Neither tool needs a running systemd.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from tests.support.files import temporaryDirectory

UNITS = Path(__file__).resolve().parents[2] / "twisted_services/systemd/unitfiles"
SHIPPED_TWISTD = "/usr/local/bin/twistd"
MAX_EXPOSURE = 2.9
SERVICES = ["echo", "chat", "http", "temperature"]
TIMEOUT = 60.0

_EXPOSURE = re.compile(r"Overall exposure level for \S+: (?P<score>\d+(?:\.\d+)?)")


def systemdAnalyze() -> str:
    """The path of C{systemd-analyze}; skip the test if it is not installed."""
    path = shutil.which("systemd-analyze")
    if path is None:
        raise SkipTest("systemd-analyze is not installed (Debian package systemd)")
    return path


def venvTwistd() -> str:
    """The C{twistd} script of the environment running the tests."""
    candidate = Path(sys.executable).parent / "twistd"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("twistd")
    if found is None:
        raise SkipTest("no twistd script next to the Python running the tests")
    return found


def unitFiles() -> list[Path]:
    """Every unit shipped in C{twisted_services/systemd/unitfiles/}."""
    return sorted(UNITS.glob("*.service")) + sorted(UNITS.glob("*.socket"))


def runAnalyze(arguments: list[str]) -> subprocess.CompletedProcess[str]:
    """Run C{systemd-analyze ARGUMENTS} to completion, without a pager or colour."""
    return subprocess.run(
        [systemdAnalyze(), *arguments],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env={**os.environ, "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0"},
    )


class ShippedUnitsTests(SynchronousTestCase):
    """The set of units matches the names the operations issue agreed."""

    def test_names(self) -> None:
        """
        Each service has a C{.service} and a C{.socket}, and the combined
        service one named socket per service.
        """
        expected = {f"twisted-services-{name}.service" for name in SERVICES}
        expected |= {f"twisted-services-{name}.socket" for name in SERVICES}
        expected |= {f"twisted-services-combined-{name}.socket" for name in SERVICES}
        expected.add("twisted-services.service")
        self.assertEqual({path.name for path in unitFiles()}, expected)

    def test_shippedTwistd(self) -> None:
        """Every service runs C{twistd -n --pidfile=} from the documented path."""
        for path in UNITS.glob("*.service"):
            lines = [
                line
                for line in path.read_text().splitlines()
                if line.startswith("ExecStart=")
            ]
            self.assertEqual(len(lines), 1, path.name)
            self.assertTrue(
                lines[0].startswith(f"ExecStart={SHIPPED_TWISTD} -n --pidfile= "),
                lines[0],
            )


class VerifyTests(SynchronousTestCase):
    """C{systemd-analyze verify} on a copy of the units."""

    def setUp(self) -> None:
        systemdAnalyze()
        twistd = venvTwistd()
        self.directory = temporaryDirectory(self, "units-")
        for path in unitFiles():
            text = path.read_text()
            if path.suffix == ".service":
                self.assertIn(f"ExecStart={SHIPPED_TWISTD} ", text, path.name)
                text = text.replace(
                    f"ExecStart={SHIPPED_TWISTD} ", f"ExecStart={twistd} "
                )
            (self.directory / path.name).write_text(text)

    def test_verify(self) -> None:
        """
        C{systemd-analyze verify} accepts every unit and says nothing about
        any of them (an unknown key is only a warning to systemd itself).
        """
        copies = [str(self.directory / path.name) for path in unitFiles()]
        result = runAnalyze(["verify", "--man=no", "--recursive-errors=no", *copies])
        # Other units on the host may draw warnings; ours must draw none.
        ours = [
            line for line in result.stderr.splitlines() if "twisted-services" in line
        ]
        self.assertEqual(
            (result.returncode, ours),
            (0, []),
            f"systemd-analyze verify:\n{result.stdout}{result.stderr}",
        )

    def test_verifyCatchesMistakes(self) -> None:
        """
        The check above can fail: an unknown key, or an C{ExecStart=} whose
        program does not exist, makes C{verify} fail.
        """
        original = self.directory / "twisted-services-echo.service"
        text = original.read_text()
        for name, broken in [
            ("unknown-key.service", text.replace("UMask=0077", "UMsak=0077")),
            (
                "missing-program.service",
                re.sub(r"ExecStart=\S+", "ExecStart=/nonexistent/twistd", text),
            ),
        ]:
            path = self.directory / name
            path.write_text(broken)
            result = runAnalyze(
                ["verify", "--man=no", "--recursive-errors=no", str(path)]
            )
            self.assertNotEqual(result.returncode, 0, name)
            path.unlink()


class SecurityTests(SynchronousTestCase):
    """C{systemd-analyze security --offline=true} on every service unit."""

    def test_exposure(self) -> None:
        """
        Every service unit's overall exposure is at most L{MAX_EXPOSURE}; the
        scores are printed, and named in the failure message.
        """
        systemdAnalyze()
        scores: dict[str, float] = {}
        for path in sorted(UNITS.glob("*.service")):
            result = runAnalyze(["security", "--offline=true", str(path)])
            match = _EXPOSURE.search(result.stdout)
            self.assertIsNotNone(
                match, f"no exposure for {path.name}:\n{result.stdout}{result.stderr}"
            )
            assert match is not None
            scores[path.name] = float(match["score"])
        report = ", ".join(f"{name} {score}" for name, score in scores.items())
        print(f"\nsystemd-analyze security exposure: {report}")
        self.assertEqual(len(scores), 5, report)
        worst = max(scores.values())
        self.assertLessEqual(worst, MAX_EXPOSURE, f"exposure scores: {report}")
