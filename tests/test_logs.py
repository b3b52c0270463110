"""reconciler.run.logs: structlog is imported only for a message that passes the level
(start-up cost), and a message that passes reaches the configured stream as JSON."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO

PROBE = """
import io, logging, sys
from reconciler.run import logs
log = logs.get_logger()
stream = io.StringIO()
logs.configure(logging.WARNING, stream=stream)
log.info("dropped", detail=1)
log.debug("dropped too")
print("structlog" in sys.modules, "asyncio" in sys.modules)
log.warning("kept", detail=2)
print("structlog" in sys.modules)
print(stream.getvalue().strip())
"""


def test_structlog_is_imported_only_for_a_message_that_passes_the_level():
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert result.returncode == 0, result.stderr
    before, after, line = result.stdout.splitlines()
    assert before == "False False" and after == "True"
    message = json.loads(line)
    assert (message["event"], message["level"], message["detail"]) == ("kept", "warning", 2)
