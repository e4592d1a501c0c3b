"""Malformed experiment configs: one list, for gorl.experiment, which refuses them
(test_experiment), and for the pipeline, which must refuse them with the same line
(test_workflow). Each case: (change to a valid config, the key its one-line error names)."""

MALFORMED = [
    ({"seeds": "x"}, "seeds"),
    ({"seeds": [0, -1]}, "seeds[1]"),
    ({"algorithms": ["ppo", "no_such_algo"]}, "algorithms[1]"),
    ({"analysis": {"bootstrap_rep": 100}}, "bootstrap_rep"),
    ({"stepz": 10}, "stepz"),
    ({"algorithm_overrides": {"ppo": {"set": {"clip_epz": 0.1}}}}, "clip_epz"),
    ({"algorithm_overrides": {"ppo": {"preset": "nosuch"}}}, "algorithm_overrides.ppo.preset"),
    ({"algorithm_overrides": {"ppo": {"set": {"num_envs": "many"}}}}, "algorithm_overrides.ppo.set"),
    ({"trust_checkpoints": "maybe"}, "trust_checkpoints"),
]
