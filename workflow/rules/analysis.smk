# Aggregation, rliable statistics, figures and the paper table. Each rule gets only the
# config slice it uses as params (a colour change never retrains; a new seed re-aggregates).
# The analysis/ modules a rule imports are declared as inputs (`src`), so editing a figure
# function redraws that figure (Snakemake does not track imported code, issue #2192);
# analysis is cheap, training is not: training never depends on analysis/.
# Helpers (_src, _figure, _runs_dir, GORL_ALGOS) live in common.smk (lint: no functions beside rules).
# Resources are sized for the paper experiment and are the same for every executor; on
# SLURM they become --mem/--time (change them with --set-resources, see docs/pipeline.md).


rule aggregate:
    input:
        runs=all_status(),
        src=_src("collect.py"),
    output:
        tidy_parquet=f"{TABLES}/evals_tidy.parquet",
        tidy_csv=report(
            f"{TABLES}/evals_tidy.csv",
            caption="../report/tidy.rst",
            category="Tables",
            subcategory="Runs",
            labels={"table": "evaluations (tidy)"},
        ),
        finals=report(
            f"{TABLES}/final_scores.csv",
            caption="../report/final_scores.rst",
            category="Tables",
            subcategory="Runs",
            labels={"table": "final scores"},
        ),
        problems=report(
            f"{TABLES}/problem_runs.csv",
            caption="../report/problem_runs.rst",
            category="Tables",
            subcategory="Runs",
            labels={"table": "failed / missing runs"},
        ),
    log:
        f"{RESULTS}/logs/aggregate.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        runs=_runs_dir,
        expected=expected_runs(),
        diverged_policy=ANALYSIS["diverged_policy"],
    script:
        "../scripts/aggregate.py"


rule statistics:
    input:
        tidy=rules.aggregate.output.tidy_parquet,
        finals=rules.aggregate.output.finals,
        src=_src("stats.py"),
    output:
        aggregate=report(
            f"{TABLES}/aggregate_metrics.csv",
            caption="../report/tables_stats.rst",
            category="Tables",
            subcategory="Statistics",
            labels={"table": "aggregate metrics"},
        ),
        poi=report(
            f"{TABLES}/probability_of_improvement.csv",
            caption="../report/tables_stats.rst",
            category="Tables",
            subcategory="Statistics",
            labels={"table": "probability of improvement"},
        ),
        profiles=f"{TABLES}/performance_profiles.csv",
        curves=f"{TABLES}/sample_efficiency.csv",
        exclusions=f"{TABLES}/score_exclusions.csv",
    log:
        f"{RESULTS}/logs/statistics.log",
    resources:
        mem_mb=8000,
        runtime=60,  # 50,000 bootstrap reps: about a minute, see docs/pipeline.md
    params:
        reps=ANALYSIS["bootstrap_reps"],
        seed=ANALYSIS["bootstrap_seed"],
        curve_points=ANALYSIS["curve_points"],
        profile_points=ANALYSIS["profile_points"],
        diverged_policy=ANALYSIS["diverged_policy"],
        families={a: s["family"] for a, s in STYLES.items()},
    script:
        "../scripts/statistics.py"


rule figure_learning_curves:
    input:
        tidy=rules.aggregate.output.tidy_parquet,
        src=_src("figures.py", "style.py"),
    output:
        png=_figure("learning_curves", "Learning curves", "per-task learning curves"),
        pdf=f"{FIGURES}/learning_curves.pdf",
    log:
        f"{RESULTS}/logs/figure_learning_curves.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        styles=STYLES,
        tasks=TASKS,
    script:
        "../scripts/figures.py"


rule figure_aggregate_metrics:
    input:
        table=rules.statistics.output.aggregate,
        src=_src("figures.py", "style.py"),
    output:
        png=_figure(
            "aggregate_metrics", "Aggregate metrics", "IQM / median / mean / optimality gap"
        ),
        pdf=f"{FIGURES}/aggregate_metrics.pdf",
    log:
        f"{RESULTS}/logs/figure_aggregate_metrics.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        styles=STYLES,
    script:
        "../scripts/figures.py"


rule figure_probability_of_improvement:
    input:
        table=rules.statistics.output.poi,
        src=_src("figures.py", "style.py"),
    output:
        png=_figure("probability_of_improvement", "Aggregate metrics", "probability of improvement"),
        pdf=f"{FIGURES}/probability_of_improvement.pdf",
    log:
        f"{RESULTS}/logs/figure_probability_of_improvement.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        styles=STYLES,
    script:
        "../scripts/figures.py"


rule figure_performance_profiles:
    input:
        table=rules.statistics.output.profiles,
        src=_src("figures.py", "style.py"),
    output:
        png=_figure("performance_profiles", "Aggregate metrics", "performance profiles"),
        pdf=f"{FIGURES}/performance_profiles.pdf",
    log:
        f"{RESULTS}/logs/figure_performance_profiles.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        styles=STYLES,
    script:
        "../scripts/figures.py"


rule figure_sample_efficiency:
    input:
        table=rules.statistics.output.curves,
        src=_src("figures.py", "style.py"),
    output:
        png=_figure("sample_efficiency", "Learning curves", "sample efficiency (IQM)"),
        pdf=f"{FIGURES}/sample_efficiency.pdf",
    log:
        f"{RESULTS}/logs/figure_sample_efficiency.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        styles=STYLES,
    script:
        "../scripts/figures.py"


rule figure_action_distribution:
    input:
        runs=[run_status(a, ACTION_TASK, ACTION_SEED) for a in ALGOS],
        src=_src("figures.py", "style.py", "actions.py", "collect.py"),
    output:
        png=_figure("action_distribution", "Action distributions", "probe actions through training"),
        pdf=f"{FIGURES}/action_distribution.pdf",
        table=report(
            f"{TABLES}/bimodality.csv",
            caption="../report/bimodality.rst",
            category="Tables",
            subcategory="Action distributions",
            labels={"table": "bimodality"},
        ),
    log:
        f"{RESULTS}/logs/figure_action_distribution.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        styles=STYLES,
        runs=_runs_dir,
        algorithms=ALGOS,
        task=ACTION_TASK,
        seed=ACTION_SEED,
        action_dim=ANALYSIS["action_figure"]["action_dim"],
        probe_state=ANALYSIS["action_figure"]["probe_state"],
        snapshots=ANALYSIS["action_figure"]["snapshots"],
    script:
        "../scripts/action_distribution.py"


rule paper_table:
    input:
        finals=rules.aggregate.output.finals,
        src=_src("paper.py", "physics.py", "data/paper_results.csv", "data/task_physics.csv"),
    output:
        csv=f"{TABLES}/paper_comparison.csv",
        md=report(
            f"{TABLES}/paper_comparison.md",
            caption="../report/paper_comparison.rst",
            category="Tables",
            subcategory="Paper comparison",
            labels={"table": "reproduced vs reported"},
        ),
    log:
        f"{RESULTS}/logs/paper_table.log",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        styles=STYLES,
    script:
        "../scripts/paper_table.py"


# GoRL only (issue 13.3): at visited states of the action-figure run, the bimodality of each
# fitted decoder's output against the steepness of the previous stage's mean action.


rule gorl_bimodality:
    input:
        run=lambda w: run_status(w.algo, ACTION_TASK, ACTION_SEED),
        src=_src("bimodality.py", "actions.py"),
    output:
        table=report(
            f"{TABLES}/gorl_bimodality_{{algo}}.csv",
            caption="../report/gorl_bimodality.rst",
            category="Tables",
            subcategory="Action distributions",
            labels={"table": "GoRL decoder bimodality vs steepness", "algorithm": "{algo}"},
        ),
        summary=f"{TABLES}/gorl_bimodality_summary_{{algo}}.csv",
        png=report(
            f"{FIGURES}/gorl_bimodality_{{algo}}.png",
            caption="../report/gorl_bimodality.rst",
            category="Figures",
            subcategory="Action distributions",
            labels={"figure": "GoRL decoder bimodality vs steepness", "algorithm": "{algo}"},
        ),
    log:
        f"{RESULTS}/logs/gorl_bimodality_{{algo}}.log",
    wildcard_constraints:
        algo="|".join(GORL_ALGOS) or "no-gorl-algorithm",
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        envs=4,
        steps=250,
        samples=256,
        stride=5,
    script:
        "../scripts/gorl_bimodality.py"
