# SPDX-License-Identifier: Apache-2.0
"""pytest fixtures for the fault-injection scenarios (tests/faults, issue 11).

    env        session: the integration suite's fixture (built tools from
               $DPOP_BUILD, a /tmp session dir, the AS key set), imported
               from tests/integration/conftest.py rather than copied
    memcached  function: the integration suite's memcached factory
    redis      function: the integration suite's redis-server factory

Every scenario prints one summary line as it ends; they are printed again,
together, in pytest's terminal summary ("fault scenarios").
"""
import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(HERE, "..", "integration")
sys.path.insert(0, INTEGRATION)
sys.path.insert(0, HERE)

# Loaded under its own name: a second module called "conftest" would clash.
_spec = importlib.util.spec_from_file_location("dpop_integration_conftest",
                                               os.path.join(INTEGRATION, "conftest.py"))
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)

env = _integration.env
memcached = _integration.memcached
redis = _integration.redis


def pytest_terminal_summary(terminalreporter):
    from faultlib import LINES
    if LINES:
        terminalreporter.section("fault scenarios")
        for line in LINES:
            terminalreporter.write_line(line)
