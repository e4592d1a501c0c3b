# GoRL-Bench pipeline. Everything lives under workflow/ (standard Snakemake layout);
# this thin file only makes `snakemake --cores N` work from the repository root.
include: "workflow/Snakefile"
