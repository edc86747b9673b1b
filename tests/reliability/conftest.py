"""The harness module sits next to these tests; the benchmark script imports it too."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
