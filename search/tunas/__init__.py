"""TuNAS (Bender et al., CVPR 2020; DESIGN 8.1): its supernet, controller, rewards, schedules and runner.

config (TunasConfig: its knobs), runner (the search loop), supernet + plan + layers (weight sharing),
policy (the controller), rewards, schedules (RL lr, warmups), refine (optional final refinement).
"""
