rule prepare_data:
    input:
        prepare_inputs,
    output:
        f"{PREPARED}/{{dataset}}.json",
    log:
        f"{RESULTS}/logs/prepare/{{dataset}}.log",
    conda:
        "../envs/auxbench.yaml"
    params:
        flags=data_flags,
    shell:
        "auxbench prepare --dataset {wildcards.dataset} {params.flags} --out {output} > {log} 2>&1"


rule data:
    input:
        expand(
            f"{PREPARED}/{{dataset}}.json",
            dataset=DATASET_NAMES + DENSE_NAMES,
        ),
