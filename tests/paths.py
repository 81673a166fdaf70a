"""Where the tests find the repository's files and the shared test footage, wherever the
test module sits in the tree."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
VTEST = SHARED_DATA / "vtest.avi"
DOCS = ROOT / "docs"
