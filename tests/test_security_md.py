"""SECURITY.md names only tests that exist, and every test citing it names a section of it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECURITY = (ROOT / "SECURITY.md").read_text("utf-8")


def test_every_test_named_in_security_md_exists() -> None:
    cited = re.findall(r"^- `(test_\w+\.py)`:((?:.*\n)(?:  .*\n)*)", SECURITY, re.MULTILINE)
    assert len(cited) > 20
    for file_name, names in cited:
        source = (ROOT / "tests" / file_name).read_text("utf-8")
        for name in re.findall(r"`(test_\w+)`", names):
            assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), (
                f"SECURITY.md names {file_name}::{name}, which does not exist")


def test_every_section_a_test_cites_exists() -> None:
    sections = set(re.findall(r"^### (.+)$", SECURITY, re.MULTILINE))
    for path in (ROOT / "tests").glob("test_*.py"):
        text = " ".join(path.read_text("utf-8").split())
        for section in re.findall(r'SECURITY\.md, "([^"]+)"', text):
            assert section in sections, f"{path.name} cites a section SECURITY.md lacks"
