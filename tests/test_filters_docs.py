"""The filters README example runs and prints exactly the output pasted under it."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "readme" / "filters.md"


def test_readme_example_output_is_real() -> None:
    text = DOC.read_text(encoding="utf-8")
    section = text.split("### Example (real output)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    expected = re.search(r"```text\n(.*?)```", section, re.S)
    assert code is not None and expected is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), str(DOC), "exec"), {"__name__": "readme_example"})
    assert out.getvalue().strip() == expected.group(1).strip()
