# GoRL-Bench pipeline. Everything lives under workflow/ (standard Snakemake layout);
# this thin file only makes `snakemake --cores N` work from the repository root.
include: "workflow/Snakefile"


# Workflow.include() restores the caller's default target after an included file, so the
# `default_target: True` of workflow/Snakefile's `all` is forgotten here (measured with
# Snakemake 9.27: "Nothing to be done"). Re-declare it in this, the main, Snakefile.
rule default:
    default_target: True
    input:
        rules.all.input,


localrules:
    default,
