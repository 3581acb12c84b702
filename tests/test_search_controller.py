"""The TuNAS controller (policy, REINFORCE, Adam, schedules), refinement and rejection sampling."""
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from latbench.errors import BadInput  # noqa: E402
from latbench.spaces import get_space  # noqa: E402
from search.latency import load_latency_model, rejection_sample, uniform_indices  # noqa: E402
from search.tunas.plan import Planner  # noqa: E402
from search.tunas.policy import CategoricalPolicy, EMABaseline, make_rl_optimizer  # noqa: E402
from search.tunas.refine import refine_to_target  # noqa: E402
from search.tunas.schedules import rl_learning_rate  # noqa: E402


def test_policy_starts_uniform_and_samples_valid_indices():
    pol = CategoricalPolicy([1, 3, 2, 7])
    p = pol.probs()
    np.testing.assert_allclose(p[1, :3].detach(), [1 / 3] * 3)
    np.testing.assert_allclose(p[2, 2:].detach(), 0)
    g = torch.Generator().manual_seed(0)
    samples = np.stack([pol.sample(g) for _ in range(300)])
    assert (samples < np.array([1, 3, 2, 7])).all() and (samples[:, 0] == 0).all()
    assert set(samples[:, 3]) == set(range(7))
    assert pol.entropy() == pytest.approx(np.log(3) + np.log(2) + np.log(7), rel=1e-5)


def test_hierarchical_log_prob_ignores_decisions_of_skipped_layers():
    space = get_space("proxylessnas")
    pl = Planner(space)
    pol = CategoricalPolicy(space.sizes, pl.parents())
    idx = np.zeros(space.num_decisions, dtype=int)
    op = next(d for d, f in enumerate(pl.fields) if f == "op" and len(pl.options[d]) == 2)
    children = [d for d, p in enumerate(pl.parents()) if p and p[0] == op]
    assert {pl.fields[d] for d in children} == {"kernel", "expansion"}
    full = float(pol.log_prob(idx).detach())
    idx[op] = pl.options[op].index("skip")
    skipped = float(pol.log_prob(idx).detach())
    children_nats = sum(np.log(len(pl.options[d])) for d in children)  # uniform children
    assert skipped == pytest.approx(full + children_nats, rel=1e-5)  # children no longer counted
    # the entropy of the decisions active for an arch leaves them out too
    assert pol.entropy(idx) == pytest.approx(pol.entropy() - children_nats, rel=1e-5)


@pytest.mark.parametrize("samples", [1, 4])
def test_controller_converges_on_a_synthetic_reward(samples):
    """reward = fraction of decisions that pick option 2: REINFORCE + EMA baseline + Adam(beta1=0)
    with the TuNAS schedule (lr 0 for 25%, then 10x growth) ends with argmax == 2 everywhere,
    with one sample per step or several (TuNAS's shards)."""
    sizes = [3, 4, 3, 5, 3, 3, 6, 3]
    pol = CategoricalPolicy(sizes)
    opt, base = make_rl_optimizer(pol), EMABaseline(0.95)
    g = torch.Generator().manual_seed(0)
    n = 400
    for step in range(n):
        idxs = [pol.sample(g) for _ in range(samples)]
        rewards = [float(np.mean(idx == 2)) for idx in idxs]
        b = base.update(float(np.mean(rewards)))
        for group in opt.param_groups:
            group["lr"] = rl_learning_rate(step, n, 0.05)
        opt.zero_grad()
        pol.reinforce_loss(idxs, rewards, b).backward()
        opt.step()
        if step < n // 4:
            assert torch.count_nonzero(pol.logits.detach()) == 0  # lr 0: the policy does not move
    assert (pol.argmax() == 2).all()
    assert (pol.probs()[:, 2] > 0.9).all()


def test_more_samples_per_step_give_a_less_noisy_controller_gradient():
    """The point of several samples per step: the REINFORCE gradient's variance falls ~1/K."""
    sizes = [3, 4, 3, 5]
    pol = CategoricalPolicy(sizes)
    g = torch.Generator().manual_seed(1)

    def grad(k):
        idxs = [pol.sample(g) for _ in range(k)]
        rewards = [float(np.mean(idx == 2)) for idx in idxs]
        pol.logits.grad = None
        pol.reinforce_loss(idxs, rewards, 0.25).backward()
        return pol.logits.grad.clone()

    var = {k: torch.stack([grad(k) for _ in range(400)]).var(0).sum().item() for k in (1, 4)}
    assert 0.15 < var[4] / var[1] < 0.4


@pytest.fixture(scope="module")
def proxyless():
    space = get_space("proxylessnas")
    lm, _ = load_latency_model(space, None)
    return space, lm


def test_rejection_sampling_stays_in_band(proxyless):
    space, lm = proxyless
    rng = np.random.default_rng(0)
    cands = rejection_sample(lm, space.sizes, 84.0, 0.01, 20, rng, batch=4096)
    lat = lm.latency(cands)
    assert len(cands) == 20 and (np.abs(lat / 84.0 - 1) <= 0.01).all()
    assert len({c.tobytes() for c in cands}) == 20
    with pytest.raises(BadInput, match="within"):
        rejection_sample(lm, space.sizes, 10.0, 0.01, 1, rng, batch=512, max_batches=2)
    u = uniform_indices(space.sizes, 5000, rng)
    assert (u < np.array(space.sizes)).all() and (u.max(axis=0) == np.array(space.sizes) - 1).all()


def test_refinement_reaches_the_target_with_few_changes(proxyless):
    space, lm = proxyless
    logp = np.log(np.full((space.num_decisions, 3), 1 / 3))
    start = np.array(space.reference_models()["ProxylessNAS-Mobile"])
    for target in (82.0, 86.0):
        idx, info = refine_to_target(lm, logp, space.sizes, start, target, 0.005)
        assert info["reached"] and abs(lm.latency(idx) / target - 1) <= 0.005
        assert 1 <= info["changes"] <= 3
    idx, info = refine_to_target(lm, logp, space.sizes, start, 84.42, 0.005)
    assert info["changes"] == 0 and (idx == start).all()


def test_log_prob_of_a_batch_equals_the_row_by_row_values():
    space = get_space("proxylessnas")
    pol = CategoricalPolicy(space.sizes, Planner(space).parents())
    with torch.no_grad():
        pol.logits.normal_(generator=torch.Generator().manual_seed(3))
    idx = pol.sample_many(16, torch.Generator().manual_seed(4))
    assert idx.shape == (16, space.num_decisions) and (idx < np.array(space.sizes)).all()
    batch = pol.log_prob(idx).detach()
    rows = torch.stack([pol.log_prob(row).detach() for row in idx])
    torch.testing.assert_close(batch, rows)


class _AdditiveLatency:
    """A latency model over a tiny space: the sum of a cost per decision and option."""

    def __init__(self, costs):
        self.costs = [np.asarray(c, dtype=np.float64) for c in costs]

    def latency(self, idx):
        idx = np.asarray(idx)
        return sum(c[idx[..., d]] for d, c in enumerate(self.costs))


def test_latency_term_gradient_is_the_exact_gradient_of_the_expected_penalty():
    """The many-sample latency term estimates the gradient of beta * E|T/T0 - 1| without bias:
    its mean over draws equals the exact gradient, by enumerating every arch of a tiny space."""
    import itertools

    from search.tunas.runner import latency_term_loss

    lm = _AdditiveLatency([[1.0, 3.0, 6.0], [0.0, 2.5], [2.0, 2.2, 5.0]])
    pol = CategoricalPolicy([3, 2, 3])
    with torch.no_grad():
        pol.logits.copy_(torch.tensor([[0.3, -0.2, 0.1], [0.5, 0.0, 0.0], [-0.4, 0.2, 0.0]]))
    target, beta = 7.0, -0.1
    archs = np.array(list(itertools.product(range(3), range(2), range(3))))
    penalty = torch.as_tensor(np.abs(lm.latency(archs) / target - 1))
    expected = (torch.exp(pol.log_prob(archs)).double() * penalty).sum()
    exact = torch.autograd.grad(-beta * expected, pol.logits)[0]  # loss = -reward
    g = torch.Generator().manual_seed(0)
    grads = []
    for _ in range(200):
        pol.logits.grad = None
        latency_term_loss(pol, lm, target, beta, 512, g).backward()
        grads.append(pol.logits.grad.clone())
    mean = torch.stack(grads).mean(0)
    assert torch.count_nonzero(exact) > 0
    torch.testing.assert_close(mean, exact, atol=2e-4, rtol=0.05)


def test_latency_term_alone_collapses_the_policy_onto_the_target(proxyless):
    """With no quality signal at all, the many-sample latency term drives TuNAS's controller (Adam,
    lr schedule) to a collapsed policy whose argmax lands within 0.5 % of T0: the absolute reward
    penalises the spread of the sampled latencies, not only their mean."""
    from search.tunas.runner import latency_term_loss

    space, lm = proxyless
    pol = CategoricalPolicy(space.sizes, Planner(space).parents())
    opt, g, n = make_rl_optimizer(pol), torch.Generator().manual_seed(0), 400
    for step in range(n // 4, n):
        for group in opt.param_groups:
            group["lr"] = rl_learning_rate(step, n, 0.05)
        opt.zero_grad()
        latency_term_loss(pol, lm, 84.0, -0.1, 256, g).backward()
        opt.step()
    assert abs(lm.latency(pol.argmax()) / 84.0 - 1) <= 0.005
    assert pol.entropy(pol.argmax()) < 0.05 * CategoricalPolicy(space.sizes, Planner(space).parents()).entropy()


class _AdditiveExpected(_AdditiveLatency):
    def expected_latency(self, probs):
        return sum((p * torch.as_tensor(c, dtype=p.dtype)).sum() for p, c in zip(probs, self.costs))


def test_expected_latency_term_is_the_penalty_at_the_policys_mean_latency():
    """`--latency-term expected` prices beta |E[T]/T0 - 1| with E[T] the policy's exact expected
    latency: value and gradient against enumerating every arch of a tiny space."""
    import itertools

    from search.tunas.runner import expected_latency_loss

    lm = _AdditiveExpected([[1.0, 3.0, 6.0], [0.0, 2.5], [2.0, 2.2, 5.0]])
    pol = CategoricalPolicy([3, 2, 3])
    with torch.no_grad():
        pol.logits.copy_(torch.tensor([[0.3, -0.2, 0.1], [0.5, 0.0, 0.0], [-0.4, 0.2, 0.0]]))
    archs = np.array(list(itertools.product(range(3), range(2), range(3))))
    mean = (torch.exp(pol.log_prob(archs)).double() * torch.as_tensor(lm.latency(archs))).sum()
    for target, beta in ((7.0, -3.0), (9.5, -0.1)):  # mean latency ~8.3 ms: one target each side
        exact_loss = -beta * torch.abs(mean / target - 1)
        exact = torch.autograd.grad(exact_loss, pol.logits, retain_graph=True)[0]
        loss = expected_latency_loss(pol, lm, target, beta)
        got = torch.autograd.grad(loss, pol.logits)[0]
        assert float(loss) == pytest.approx(float(exact_loss), rel=1e-5)  # the loss is float32
        assert torch.count_nonzero(exact) > 0
        torch.testing.assert_close(got, exact.float(), atol=1e-6, rtol=1e-4)


def test_expected_latency_term_alone_centres_the_policy_on_the_target(proxyless):
    from search.tunas.runner import expected_latency_loss

    space, lm = proxyless
    pol = CategoricalPolicy(space.sizes, Planner(space).parents())
    start = float(lm.expected_latency([p.double() for p in pol.prob_list()]))
    target = start * 0.9  # 10 % below the uniform policy's mean
    opt, n = make_rl_optimizer(pol), 400
    for step in range(n // 4, n):
        for group in opt.param_groups:
            group["lr"] = rl_learning_rate(step, n, 0.05)
        opt.zero_grad()
        expected_latency_loss(pol, lm, target, -3.0).backward()
        opt.step()
    end = float(lm.expected_latency([p.double() for p in pol.prob_list()]))
    assert abs(end / target - 1) <= 0.005
