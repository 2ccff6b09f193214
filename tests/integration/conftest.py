# SPDX-License-Identifier: Apache-2.0
"""pytest fixtures for the mod_dpop integration tests (see harness.py).

    env            session: built tools, /tmp session dir, the AS key set
    httpd          function: factory; httpd(**Httpd kwargs) -> started Httpd.
                   On teardown every instance is stopped and its logs are
                   checked for minted tokens/proofs/private keys and for
                   crashed processes ("exit signal").
    memcached      function: factory; memcached() -> started Memcached
    redis          function: factory; redis() -> started Redis (own redis-server)
    client         function: a fresh DPoP client (ES256 key + bound token)

Tests run as root in CI; httpd children run as www-data, so everything the
harness generates is world-readable (run dirs are chowned to the User).
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import Client, Env  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long-running integration test")


@pytest.fixture(scope="session")
def env():
    e = Env.create()
    missing = e.tools.missing()
    if missing:
        e.cleanup()
        pytest.skip("build the project first (DPOP_BUILD=%s); missing: %s"
                    % (e.tools.build, ", ".join(missing)))
    if not os.path.exists("/usr/sbin/apache2"):
        e.cleanup()
        pytest.skip("apache2 not installed (scripts/deps.sh)")
    e.setup_as()
    yield e
    e.cleanup()


@pytest.fixture
def httpd(env):
    started = []

    def make(**kw):
        h = env.httpd(**kw)
        h.start()
        started.append(h)
        return h

    yield make
    try:
        for h in started:
            h.stop()
        for h in started:
            h.assert_no_secrets()
            h.assert_no_crash()
    finally:
        for h in started:
            h.stop()


@pytest.fixture
def memcached(env):
    started = []

    def make():
        m = env.memcached().start()
        started.append(m)
        return m

    yield make
    for m in started:
        m.stop()


@pytest.fixture
def redis(env):
    started = []

    def make():
        r = env.redis().start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


@pytest.fixture
def client(env):
    return Client(env)
