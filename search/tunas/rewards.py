"""RL rewards of TuNAS section 4.2 (reference: tunas/search_space_utils.reward_for_single_cost_model).

  absolute: Q + beta * |T/T0 - 1|          (TuNAS, beta = -0.10)
  soft:     Q * (T/T0) ** beta             (MnasNet / ProxylessNAS, e.g. beta = -0.07)
  hard:     Q * min((T/T0) ** beta, 1)     (MnasNet hard: Q when T <= T0)
Work on floats, numpy arrays and torch tensors alike.
"""
from __future__ import annotations


def absolute_reward(quality, latency, target, beta=-0.10):
    return quality + beta * abs(latency / target - 1.0)


def soft_reward(quality, latency, target, beta=-0.07):
    return quality * (latency / target) ** beta


def hard_reward(quality, latency, target, beta=-0.07):
    adj = (latency / target) ** beta
    try:
        adj = min(adj, 1.0)
    except (TypeError, RuntimeError, ValueError):  # arrays / tensors
        adj = adj.clip(max=1.0)
    return quality * adj


REWARD_FUNCTIONS = {"absolute": absolute_reward, "soft": soft_reward, "hard": hard_reward}


def reward_function(name: str):
    from latbench.errors import BadInput

    if name not in REWARD_FUNCTIONS:
        raise BadInput(f"--reward: expected one of {', '.join(REWARD_FUNCTIONS)}, got {name!r}")
    return REWARD_FUNCTIONS[name]
