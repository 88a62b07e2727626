"""Shared fixtures: real reference-stack processes on free loopback ports.

``stack_factory(portal_env=..., with_media=..., media_args=...)`` starts a real uvicorn portal (and the
media relay when asked) in subprocesses with a fresh SQLite file; everything started is stopped at teardown.
"""

from __future__ import annotations

import logging

import pytest

from harness.refstack.stack import Stack, StackConfig

# Contract 1.2 defaults the tests rely on: fast bcrypt keeps login tests quick without changing behaviour.
TEST_PORTAL_ENV = {"REFSTACK_BCRYPT_ROUNDS": "4"}


@pytest.fixture(autouse=True)
def _quiet_ice_logs():
    # media-design 6.3: aioice logs several INFO lines per connection.
    for name in ("aioice", "aiortc"):
        logging.getLogger(name).setLevel(logging.WARNING)
    yield


@pytest.fixture
def stack_factory(tmp_path):
    started: list[Stack] = []

    def make(portal_env: dict[str, str] | None = None, with_media: bool = False, media_args: list[str] | None = None) -> Stack:
        env = {**TEST_PORTAL_ENV, **(portal_env or {})}
        config = StackConfig.ephemeral(
            with_media=with_media,
            portal_env=env,
            media_args=list(media_args or []),
            data_dir=tmp_path / f"stack{len(started)}",
        )
        stack = Stack(config)
        started.append(stack)
        return stack.start()

    yield make
    for stack in started:
        stack.stop()


@pytest.fixture
def portal(stack_factory) -> Stack:
    """A running reference portal in open mode (BOOTH_ACCESS_TOKEN empty), no media relay."""
    return stack_factory()


@pytest.fixture
def stack(stack_factory) -> Stack:
    """Portal plus media relay."""
    return stack_factory(with_media=True)
