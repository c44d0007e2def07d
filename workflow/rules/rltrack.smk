# The RL track (config key `rltrack`): one A2C run per environment × method × seed, then tables and
# figures for the report. Without an `rltrack` section nothing here is added to the DAG (its
# results folders then hold only a NOT_CONFIGURED marker: common.smk).


if RLTRACK:

    rule rltrack_train:
        output:
            metrics=f"{RESULTS}/rltrack/runs/{{env}}/{{method}}/seed{{seed}}/metrics.json",
            curve=f"{RESULTS}/rltrack/runs/{{env}}/{{method}}/seed{{seed}}/curve.csv",
        log:
            f"{RESULTS}/logs/rltrack/{{env}}/{{method}}/seed{{seed}}.log",
        conda:
            "../envs/auxbench.yaml"
        threads: 1
        resources:
            runtime=RLTRACK.get("runtime", 60),
            mem_mb=RLTRACK.get("mem_mb", 4000),
        params:
            steps=RLTRACK["steps"],
            settings=rltrack_settings,
        shell:
            "OMP_NUM_THREADS={threads} exec auxbench rltrack-train --env {wildcards.env}"
            " --method {wildcards.method} --seed {wildcards.seed} --steps {params.steps}"
            " {params.settings} --out $(dirname {output.metrics}) > {log} 2>&1"

    rule rltrack_aggregate:
        input:
            [f"{directory}/metrics.json" for directory in RLTRACK_RUNS],
        output:
            summary=report(
                f"{RESULTS}/tables/rltrack_summary.csv",
                caption="../report/rltrack.rst",
                category="Tables",
            ),
            runs=f"{RESULTS}/tables/rltrack_runs.csv",
            curves=f"{RESULTS}/tables/rltrack_curves.csv",
            summary_md=f"{RESULTS}/tables/rltrack_summary.md",
            figures=report(
                directory(f"{RESULTS}/figures-rltrack"),
                patterns=["{name}.png"],
                caption="../report/rltrack-figures.rst",
                category="Figures",
            ),
        log:
            f"{RESULTS}/logs/rltrack_aggregate.log",
        conda:
            "../envs/auxbench.yaml"
        params:
            runs=lambda wildcards, input: " ".join(
                os.path.dirname(path) for path in input
            ),
            # a marker left from a run without the section (DVC keeps results/rltrack)
            stale_marker=f"{RESULTS}/rltrack/{NOT_CONFIGURED}",
        shell:
            "rm -f {params.stale_marker} && auxbench rltrack-aggregate {params.runs}"
            " --tables $(dirname {output.summary}) --figures {output.figures} > {log} 2>&1"
