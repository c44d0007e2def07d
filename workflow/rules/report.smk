rule aggregate:
    input:
        metrics=[directory / "metrics.json" for directory in RUN_DIRECTORIES],
        # the resolved config, for its `published` list (published.csv), when it has one
        config=f"{RESULTS}/config.yaml" if config.get("published") else [],
    output:
        **(
            {"published": f"{RESULTS}/tables/published.csv"}
            if config.get("published")
            else {}
        ),
        runs=report(
            f"{RESULTS}/tables/runs.csv",
            caption="../report/runs.rst",
            category="Tables",
        ),
        history=f"{RESULTS}/tables/history.csv",
        summary=report(
            f"{RESULTS}/tables/summary.csv",
            caption="../report/summary.rst",
            category="Tables",
        ),
        summary_md=f"{RESULTS}/tables/summary.md",
        comparisons=f"{RESULTS}/tables/comparisons.csv",
        ranks=f"{RESULTS}/tables/ranks.csv",
        friedman=f"{RESULTS}/tables/friedman.json",
        metrics=f"{RESULTS}/metrics.json",
    log:
        f"{RESULTS}/logs/aggregate.log",
    conda:
        "../envs/auxbench.yaml"
    params:
        published=lambda wildcards, input: (
            f"--published {input.config}" if input.config else ""
        ),
    shell:
        "auxbench aggregate {input.metrics} --tables $(dirname {output.runs})"
        " --metrics-out {output.metrics} {params.published} > {log} 2>&1"


rule plots:
    input:
        runs=rules.aggregate.output.runs,
        history=rules.aggregate.output.history,
        summary=rules.aggregate.output.summary,
    output:
        report(
            directory(f"{RESULTS}/figures"),
            patterns=["{name}.png"],
            caption="../report/figures.rst",
            category="Figures",
        ),
    log:
        f"{RESULTS}/logs/plots.log",
    conda:
        "../envs/auxbench.yaml"
    shell:
        "auxbench plots --tables $(dirname {input.runs}) --out {output} > {log} 2>&1"


rule resolved_config:
    output:
        f"{RESULTS}/config.yaml",
    log:
        f"{RESULTS}/logs/resolved_config.log",
    conda:
        "../envs/auxbench.yaml"
    params:
        text=yaml.safe_dump(config, sort_keys=False),
    # a shell command, not a `run:` block, which Snakemake runs by parsing the whole workflow
    # again in a new process (~4 s); temp file, then rename
    shell:
        "printf '%s' {params.text:q} > {output}.tmp && mv {output}.tmp {output}"


rule report:
    input:
        tables=rules.aggregate.output.summary,
        figures=rules.plots.output,
        config=rules.resolved_config.output,
        bench=bench_tables(),
        rltrack=(
            [
                rules.rltrack_aggregate.output.summary,
                rules.rltrack_aggregate.output.figures,
            ]
            if RLTRACK
            else []
        ),
        dense=(
            [
                rules.dense_aggregate.output.summary,
                rules.dense_aggregate.output.figures,
            ]
            if DENSE
            else []
        ),
        manipulation=(
            [
                rules.manipulation_aggregate.output.summary,
                rules.manipulation_aggregate.output.figures,
            ]
            if MANIPULATION
            else []
        ),
    output:
        f"{RESULTS}/report/index.html",
    log:
        f"{RESULTS}/logs/report.log",
    conda:
        "../envs/auxbench.yaml"
    params:
        bench=lambda wildcards, input: (
            f"--bench $(dirname {input.bench[0]})" if input.bench else ""
        ),
        rltrack=lambda wildcards, input: (
            f"--rltrack-tables $(dirname {input.rltrack[0]}) --figures {input.rltrack[1]}"
            if RLTRACK
            else ""
        ),
        dense=lambda wildcards, input: (
            f"--dense-tables $(dirname {input.dense[0]}) --figures {input.dense[1]}"
            if DENSE
            else ""
        ),
        manipulation=lambda wildcards, input: (
            f"--manipulation-tables $(dirname {input.manipulation[0]})"
            f" --figures {input.manipulation[1]}"
            if MANIPULATION
            else ""
        ),
    shell:
        "auxbench report --tables $(dirname {input.tables}) --figures {input.figures}"
        " {params.rltrack} {params.dense} {params.manipulation} {params.bench} --config {input.config} --captions workflow/report"
        " --out {output} > {log} 2>&1"
