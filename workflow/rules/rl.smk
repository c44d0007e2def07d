# The RL track (config key `rl`): one A2C run per environment × method × seed, then tables and
# figures for the report. Without an `rl` section nothing here is added to the DAG.


rule rl_train:
    output:
        metrics=f"{RESULTS}/rl/runs/{{env}}/{{method}}/seed{{seed}}/metrics.json",
        curve=f"{RESULTS}/rl/runs/{{env}}/{{method}}/seed{{seed}}/curve.csv",
    log:
        f"{RESULTS}/logs/rl/{{env}}/{{method}}/seed{{seed}}.log",
    conda:
        "../envs/auxbench.yaml"
    threads: 1
    resources:
        runtime=RL.get("runtime", 60) if RL else 60,
        mem_mb=RL.get("mem_mb", 4000) if RL else 4000,
    params:
        steps=RL["steps"] if RL else 0,
        settings=rl_settings,
    shell:
        "OMP_NUM_THREADS={threads} exec auxbench rl-train --env {wildcards.env}"
        " --method {wildcards.method} --seed {wildcards.seed} --steps {params.steps}"
        " {params.settings} --out $(dirname {output.metrics}) > {log} 2>&1"


rule rl_aggregate:
    input:
        [f"{directory}/metrics.json" for directory in RL_RUNS],
    output:
        summary=report(
            f"{RESULTS}/tables/rl_summary.csv",
            caption="../report/rl.rst",
            category="Tables",
        ),
        runs=f"{RESULTS}/tables/rl_runs.csv",
        curves=f"{RESULTS}/tables/rl_curves.csv",
        summary_md=f"{RESULTS}/tables/rl_summary.md",
        figures=report(
            directory(f"{RESULTS}/figures-rl"),
            patterns=["{name}.png"],
            caption="../report/rlfigures.rst",
            category="Figures",
        ),
    log:
        f"{RESULTS}/logs/rl_aggregate.log",
    conda:
        "../envs/auxbench.yaml"
    params:
        runs=lambda wildcards, input: " ".join(os.path.dirname(path) for path in input),
    shell:
        "auxbench rl-aggregate {params.runs} --tables $(dirname {output.summary})"
        " --figures {output.figures} > {log} 2>&1"
