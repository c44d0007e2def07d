# The cost benchmark: each method's time per step and epoch, vs `single` and vs its algorithmic
# minimum, peak memory, and the width-scaling series. It takes every core so nothing contends.


if "bench" in config:

    rule bench:
        input:
            f"{PREPARED}/{bench_dataset()}.json",
        output:
            **bench_scaling_output(),
            costs=report(
                f"{RESULTS}/bench/costs.csv",
                caption="../report/bench.rst",
                category="Cost",
            ),
            json=bench_tables("json"),
        log:
            f"{RESULTS}/logs/bench.log",
        conda:
            "../envs/auxbench.yaml"
        threads: workflow.cores
        params:
            flags=bench_flags,
            # a marker left from a run without the section (common.smk)
            stale_marker=f"{RESULTS}/bench/{NOT_CONFIGURED}",
        shell:
            "rm -f {params.stale_marker} && OMP_NUM_THREADS={threads} auxbench bench {params.flags}"
            " --out $(dirname {output.costs}) > {log} 2>&1"
