"""Run every benchmark in this folder (``make bench``); each prints its own table."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

here = Path(__file__).parent
only = sys.argv[1:]
for path in sorted(here.glob("bench_*.py")):
    if only and path.stem not in only:
        continue
    print(f"\n=== {path.name} ===", flush=True)
    runpy.run_path(str(path), run_name="__main__")
