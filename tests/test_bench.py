import re

from auxbench.bench import trainer_throughput


def test_bench_reports_both_rates_and_their_ratio():
    report = trainer_throughput("synthetic", "small", steps=2, repeats=1, device="cpu")
    bare = float(re.search(r"bare loop : +([\d.]+)", report).group(1))
    trainer = float(re.search(r"trainer   : +([\d.]+)", report).group(1))
    ratio = float(re.search(r"ratio trainer/bare = ([\d.]+)", report).group(1))
    assert bare > 0 and trainer > 0
    assert abs(ratio - trainer / bare) < 0.01
