"""
A real headless Chromium for tests of pages, driven by Playwright for
Python: Debian's C{chromium-headless-shell} (Playwright's own browser
download cannot be used here).

One browser serves every test of a test process: launched by the first
test that asks, closed at exit. A launch (Playwright's driver and Chromium)
costs about 0.7 s of CPU, and each test gets a browser context of its own
(L{Browser.newPage}), so tests share no cookies, storage or cache. While
Playwright's sync API runs it leaves its event loop set as the thread's
running loop, which only code calling C{asyncio.run} would notice: no test
here does. What a test class can share (a server subprocess) is started by
its first test (L{Shared}): trial runs no C{setUpClass}.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar
from unittest import TestLoader

from twisted.trial.unittest import SkipTest, SynchronousTestCase

CHROMIUM = "/usr/bin/chromium-headless-shell"
TIMEOUT_MS = 15_000

T = TypeVar("T")


def missing() -> str | None:
    """Why browser tests cannot run here, or L{None} if they can."""
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is not installed (Debian's chromium-headless-shell)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (the test extra has it)"
    return None


class Shared(Generic[T]):
    """
    One C{T} for the tests of one class in this process: made by C{start}
    for the first test that asks, given to C{stop} after the class's last
    test or at exit.
    """

    def __init__(self, start: Callable[[], T], stop: Callable[[T], None]) -> None:
        self._start = start
        self._stop = stop
        self._value: T | None = None
        self._left = 0

    def get(self, testCase: SynchronousTestCase) -> T:
        if self._value is None:
            self._left = len(TestLoader().getTestCaseNames(type(testCase)))
            self._value = self._start()
            atexit.register(self.release)
        self._left -= 1
        if self._left <= 0:
            testCase.addCleanup(self.release)
        return self._value

    def release(self) -> None:
        value, self._value = self._value, None
        if value is not None:
            self._stop(value)


class Browser:
    """A Playwright driver and the Chromium it launched."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._driver = sync_playwright().start()
        try:
            self.chromium = self._driver.chromium.launch(executable_path=CHROMIUM)
        except BaseException:
            self._driver.stop()
            raise

    def newPage(self, testCase: SynchronousTestCase, **options: Any) -> Any:
        """A page in a context of its own (its own origin storage), closed after."""
        context = self.chromium.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        testCase.addCleanup(context.close)
        return context.new_page()

    def close(self) -> None:
        try:
            self.chromium.close()
        finally:
            self._driver.stop()


_browser: Browser | None = None


def browserFor() -> Browser:
    """
    This process's Chromium, launched if this is the first ask (or the
    last one died); the test is skipped, saying why, where there is no
    browser to test with.
    """
    global _browser
    reason = missing()
    if reason is not None:
        raise SkipTest(reason)
    if _browser is None or not _browser.chromium.is_connected():
        _browser = Browser()
        atexit.register(_browser.close)
    return _browser


def artifactPath(name: str) -> Path:
    """
    Where a test keeps a file for people to look at afterwards (a
    screenshot): C{$TEST_ARTIFACTS}, else C{test-artifacts} in the system's
    temporary directory. The path is printed.
    """
    directory = Path(
        os.environ.get("TEST_ARTIFACTS")
        or Path(tempfile.gettempdir()) / "test-artifacts"
    )
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    print(f"artifact: {path}")
    return path
