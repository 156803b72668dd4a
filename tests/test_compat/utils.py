"""What the compat tests share."""
import subprocess
import sys
import textwrap

from tests.utils import REPO  # noqa: F401


def run_python(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (no mmdist imported)."""
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)],
                          capture_output=True, text=True)
