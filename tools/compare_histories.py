"""Compare the history.csv files of two preservation runs (tools/preservation.sh): identical
bytes once the wall-clock column ``epoch_time_s`` is dropped. Exit 1 on any difference."""

import csv
import io
import sys
from pathlib import Path

TIMING = {"epoch_time_s"}


def without_timing(path: Path) -> str:
    rows = list(csv.DictReader(path.open()))
    keep = [key for key in rows[0] if key not in TIMING]
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=keep, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def main(before: Path, after: Path) -> int:
    status = 0
    for old in sorted(before.glob("*/history.csv")):
        new = after / old.parent.name / "history.csv"
        if not new.exists():
            print(f"{old.parent.name}: missing in {after}")
            status = 1
        elif without_timing(old) == without_timing(new):
            print(f"{old.parent.name}: identical")
        else:
            print(f"{old.parent.name}: DIFFERENT")
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
