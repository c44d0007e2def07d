# The manipulation track (config key `manipulation`; OL-AUX §5.3-5.6): one DDPG + HER run per
# goal environment × method × seed, then tables and figures for the report. Without a
# `manipulation` section nothing here is added to the DAG (its results folders then hold only a
# NOT_CONFIGURED marker: common.smk). A run killed part-way resumes from its checkpoint/ (replay
# buffer included) when the job reruns.


if MANIPULATION:

    rule manipulation_train:
        output:
            metrics=f"{RESULTS}/manipulation/runs/{{env}}/{{method}}/seed{{seed}}/metrics.json",
            curve=f"{RESULTS}/manipulation/runs/{{env}}/{{method}}/seed{{seed}}/curve.csv",
        log:
            f"{RESULTS}/logs/manipulation/{{env}}/{{method}}/seed{{seed}}.log",
        conda:
            "../envs/auxbench.yaml"
        threads: MANIPULATION.get("threads", 1)
        resources:
            gpu=MANIPULATION.get("gpus", 0),
            runtime=MANIPULATION.get("runtime", 60),
            mem_mb=MANIPULATION.get("mem_mb", 4000),
        params:
            steps=MANIPULATION["steps"],
            settings=manipulation_settings,
        shell:
            "OMP_NUM_THREADS={threads} exec auxbench manipulation-train --env {wildcards.env}"
            " --method {wildcards.method} --seed {wildcards.seed} --steps {params.steps}"
            " {params.settings} --out $(dirname {output.metrics}) > {log} 2>&1"

    rule manipulation_aggregate:
        input:
            [f"{directory}/metrics.json" for directory in MANIPULATION_RUNS],
        output:
            summary=report(
                f"{RESULTS}/tables/manipulation_summary.csv",
                caption="../report/manipulation.rst",
                category="Tables",
            ),
            runs=f"{RESULTS}/tables/manipulation_runs.csv",
            curves=f"{RESULTS}/tables/manipulation_curves.csv",
            paired=f"{RESULTS}/tables/manipulation_paired.csv",
            summary_md=f"{RESULTS}/tables/manipulation_summary.md",
            figures=report(
                directory(f"{RESULTS}/figures-manipulation"),
                patterns=["{name}.png"],
                caption="../report/manipulation-figures.rst",
                category="Figures",
            ),
        log:
            f"{RESULTS}/logs/manipulation_aggregate.log",
        conda:
            "../envs/auxbench.yaml"
        params:
            runs=lambda wildcards, input: " ".join(
                os.path.dirname(path) for path in input
            ),
            # a marker left from a run without the section (DVC keeps results/manipulation)
            stale_marker=f"{RESULTS}/manipulation/{NOT_CONFIGURED}",
        shell:
            "rm -f {params.stale_marker} && auxbench manipulation-aggregate {params.runs}"
            " --tables $(dirname {output.summary}) --figures {output.figures} > {log} 2>&1"
