rule train:
    input:
        manifest=f"{PREPARED}/{{dataset}}.json",
    output:
        metrics=f"{RESULTS}/runs/{{dataset}}/{{method}}/{{weighting}}/lam{{lam}}/seed{{seed}}/metrics.json",
        history=f"{RESULTS}/runs/{{dataset}}/{{method}}/{{weighting}}/lam{{lam}}/seed{{seed}}/history.csv",
        model=f"{RESULTS}/runs/{{dataset}}/{{method}}/{{weighting}}/lam{{lam}}/seed{{seed}}/model.pt",
    log:
        f"{RESULTS}/logs/train/{{dataset}}/{{method}}/{{weighting}}/lam{{lam}}/seed{{seed}}.log",
    conda:
        "../envs/auxbench.yaml"
    threads: config["train_threads"]
    resources:
        gpu=config["resources"]["gpu"],
        runtime=config["resources"]["runtime"],
        mem_mb=config["resources"]["mem_mb"],
    params:
        method=method_flags,
        lam=lambda_flag,
        weighting=weighting_flags,
        settings=train_settings,
    shell:
        "OMP_NUM_THREADS={threads} exec auxbench train --dataset {wildcards.dataset}"
        " {params.method} {params.weighting} {params.lam} --seed {wildcards.seed}"
        " {params.settings}"
        " --out $(dirname {output.metrics}) > {log} 2>&1"
