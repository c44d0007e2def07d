"""auxbench: prepare data → one training job per dataset × method × λ × seed → tables → figures → report."""

import sys

from snakemake.utils import min_version, validate

from auxbench.data.user_sets import user_datasets
from auxbench.foundations.errors import ConfigError

min_version("8.0")


# The embedded default, unless config files are given with --configfile: those replace it rather
# than being merged into it, so a paper config never inherits the default's settings.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# Users' dataset entries first: a bad one gets a one-line error naming its key, where the schema's
# validator can only say that an item of `datasets` matches none of its forms.
try:
    user_datasets(config)
except ConfigError as error:
    sys.exit(f"auxbench: error: {error}")
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
            text=lambda wildcards: (
                f"The config has no `{UNCONFIGURED_FOLDERS[wildcards.folder]}` section, so the"
                " workflow wrote nothing else here; DVC versions this folder either way"
                " (dvc.yaml)."
            ),
        # a shell command, not a `run:` block: Snakemake runs a `run:` job by parsing the whole
        # workflow again in a new process (importing torch), ~4 s for one line of text
        shell:
            "printf '%s\\n' {params.text:q} > {output}.tmp && mv {output}.tmp {output}"
