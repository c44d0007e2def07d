import json
import os

import pytest

from auxbench.foundations import atomic


def test_writes_replace_whole_files_with_ordinary_permissions(tmp_path):
    target = tmp_path / "sub" / "metrics.json"
    atomic.write_json(target, {"a": 1})
    atomic.write_json(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2}
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    assert [p.name for p in target.parent.iterdir()] == ["metrics.json"]


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "table.csv"
    atomic.write_text(target, "old")

    def explode(path):
        path.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic._atomic_write(target, explode)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"]
