"""auxbench: prepare data → one training job per dataset × method × λ × seed → tables → figures → report."""

from snakemake.utils import min_version, validate

min_version("8.0")


# The embedded default, unless config files are given with --configfile: those replace it rather
# than being merged into it, so a paper config never inherits the default's settings.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/rl.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/report/index.html",
