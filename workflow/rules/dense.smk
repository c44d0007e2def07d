# The dense-prediction grid (config key `dense`): one run per dataset × architecture × setting ×
# weighting × seed, plus the single-task baselines of Δ_MTL, then tables and figures for the
# report. Without a `dense` section nothing here is added to the DAG (its results folders then
# hold only a NOT_CONFIGURED marker: common.smk).


if DENSE:

    rule dense_train:
        input:
            manifest=f"{PREPARED}/{{dataset}}.json",
        output:
            metrics=f"{RESULTS}/dense/runs/{{dataset}}/{{architecture}}/{{setting}}/{{weighting}}/seed{{seed}}/metrics.json",
            history=f"{RESULTS}/dense/runs/{{dataset}}/{{architecture}}/{{setting}}/{{weighting}}/seed{{seed}}/history.csv",
        log:
            f"{RESULTS}/logs/dense/{{dataset}}/{{architecture}}/{{setting}}/{{weighting}}/seed{{seed}}.log",
        conda:
            "../envs/auxbench.yaml"
        threads: config["train_threads"]
        resources:
            gpu=DENSE.get("gpus", 0),
            runtime=DENSE.get("runtime", 60),
            mem_mb=DENSE.get("mem_mb", 4000),
        params:
            settings=dense_settings,
        shell:
            "OMP_NUM_THREADS={threads} exec auxbench dense-train --dataset {wildcards.dataset}"
            " --architecture {wildcards.architecture} --setting {wildcards.setting}"
            " --weighting {wildcards.weighting} --seed {wildcards.seed} {params.settings}"
            " --out $(dirname {output.metrics}) > {log} 2>&1"

    rule dense_aggregate:
        input:
            runs=[f"{directory}/metrics.json" for directory in DENSE_RUNS],
            config=f"{RESULTS}/config.yaml",
        output:
            summary=report(
                f"{RESULTS}/tables/dense_summary.csv",
                caption="../report/dense.rst",
                category="Tables",
            ),
            runs=f"{RESULTS}/tables/dense_runs.csv",
            history=f"{RESULTS}/tables/dense_history.csv",
            summary_md=f"{RESULTS}/tables/dense_summary.md",
            figures=report(
                directory(f"{RESULTS}/figures-dense"),
                patterns=["{name}.png"],
                caption="../report/dense-figures.rst",
                category="Figures",
            ),
        log:
            f"{RESULTS}/logs/dense_aggregate.log",
        conda:
            "../envs/auxbench.yaml"
        params:
            runs=lambda wildcards, input: " ".join(
                os.path.dirname(path) for path in input.runs
            ),
            stale_marker=f"{RESULTS}/dense/{NOT_CONFIGURED}",
        shell:
            "rm -f {params.stale_marker} && auxbench dense-aggregate {params.runs}"
            " --config {input.config} --tables $(dirname {output.summary})"
            " --figures {output.figures} > {log} 2>&1"
