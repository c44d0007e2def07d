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
include: "workflow/rules/rltrack.smk"
include: "workflow/rules/dense.smk"
include: "workflow/rules/manipulation.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        f"{RESULTS}/report/index.html",
        not_configured_markers(),


# DVC versions the results folders of the optional sections (rltrack, dense, manipulation, bench) whether or not the
# config has them; without its section a folder gets this marker, so that it exists all the same.
# It is a local rule: writing a line of text is not worth a cluster job.
if UNCONFIGURED_FOLDERS:

    localrules:
        not_configured,

    rule not_configured:
        output:
            f"{RESULTS}/{{folder}}/{NOT_CONFIGURED}",
        log:
            f"{RESULTS}/logs/not_configured/{{folder}}.log",
        wildcard_constraints:
            folder="|".join(UNCONFIGURED_FOLDERS),
        params:
            section=lambda wildcards: UNCONFIGURED_FOLDERS[wildcards.folder],
        run:
            from auxbench.foundations.atomic import write_text

            write_text(
                output[0],
                f"The config has no `{params.section}` section, so the workflow wrote nothing"
                " else here; DVC versions this folder either way (dvc.yaml).\n",
            )
