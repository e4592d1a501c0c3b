"""GoRL-Bench analysis: collect run directories, rliable statistics, figures, paper table.

Modules
-------
collect   run directories -> tidy evaluation table, per-run final scores, run status
stats     thin wrappers over rliable (IQM / median / mean / optimality gap, probability of
          improvement, performance profiles, sample-efficiency curves) with an exact,
          vectorised stratified bootstrap
actions   bimodality statistics of the probe actions (probes.npz)
figures   every figure (PDF + PNG)
paper     reproduced-vs-reported table
style     one colour / label per algorithm (from the registry, palette fallback)
"""
