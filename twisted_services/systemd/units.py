"""
The systemd units, from an installed package: C{python -m
twisted_services.systemd.units DIRECTORY} (or C{twisted-services-units
DIRECTORY}) writes every shipped unit into DIRECTORY, its C{ExecStart=}
naming this installation's C{twistd}.

The units ship inside the package (C{unitfiles/}), since a deployment that
starts with C{pip install} has no source tree to copy them from. They name
C{/usr/local/bin/twistd}, where a system-wide pip puts it; a virtual
environment's C{twistd} is elsewhere, and a unit naming a missing program
fails only when systemd starts it, so the path is filled in here.
"""

from __future__ import annotations

import argparse
import sys
import sysconfig
from collections.abc import Sequence
from importlib.resources import files
from pathlib import Path

SHIPPED_TWISTD = "/usr/local/bin/twistd"
UNIT_SUFFIXES = (".service", ".socket")


def shippedUnits() -> dict[str, str]:
    """Every unit file in the package: its text by its name."""
    directory = files(__package__).joinpath("unitfiles")
    return {
        unit.name: unit.read_text(encoding="utf-8")
        for unit in sorted(directory.iterdir(), key=lambda unit: unit.name)
        if unit.name.endswith(UNIT_SUFFIXES)
    }


def installedTwistd() -> Path:
    """The C{twistd} script installed with this interpreter's packages."""
    return Path(sysconfig.get_path("scripts")) / "twistd"


def unitText(text: str, twistd: str) -> str:
    """A unit's C{text} with its C{ExecStart=} running C{twistd}."""
    return text.replace(f"ExecStart={SHIPPED_TWISTD} ", f"ExecStart={twistd} ")


def writeUnits(directory: Path, twistd: str) -> list[Path]:
    """
    Write every shipped unit into C{directory} (made if missing), running
    C{twistd}; return the paths written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in shippedUnits().items():
        path = directory / name
        path.write_text(unitText(text, twistd), encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """Write the units where the command line says; exit 1 if that fails."""
    parser = argparse.ArgumentParser(
        prog="twisted-services-units",
        description=(
            "Write the twisted-services systemd units into DIRECTORY "
            "(e.g. /etc/systemd/system), their ExecStart= naming this "
            "installation's twistd."
        ),
    )
    parser.add_argument("directory", type=Path, metavar="DIRECTORY")
    parser.add_argument(
        "--twistd",
        default=None,
        help=f"the twistd to run (default: this installation's, {installedTwistd()})",
    )
    options = parser.parse_args(argv)
    twistd = options.twistd or str(installedTwistd())
    if not Path(twistd).is_file():
        parser.error(f"no twistd at {twistd}: name it with --twistd PATH")
    try:
        written = writeUnits(options.directory, twistd)
    except OSError as error:
        sys.stderr.write(f"twisted-services-units: {error}\n")
        raise SystemExit(1) from None
    for path in written:
        sys.stdout.write(f"{path}\n")


if __name__ == "__main__":
    main()
