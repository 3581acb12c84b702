"""Stand-alone training of one arch on the proxy task: fresh supernet weights, only the arch's own
path trained (no warmups), scored on the whole validation split. Used by random search for each
candidate and by benchmarks to compare final archs of different algorithms at equal budget."""
from __future__ import annotations

from .distributed import BatchStream, wrap
from .schedules import weight_learning_rate
from .training import evaluate, make_weight_optimizer, train_step


def train_standalone(ctx, indices, steps: int, seed: int, on_step=None) -> float:
    """Validation accuracy of `indices` after `steps` weight updates from fresh weights."""
    from .tunas import build_supernet

    cfg, dist = ctx.cfg, ctx.dist
    net = build_supernet(ctx, seed)
    model = wrap(net, dist)
    opt = make_weight_optimizer(model, cfg)
    plan = net.planner.plan(indices)
    train = BatchStream(ctx.data.x_train, ctx.data.y_train, cfg.batch_size, dist, seed=seed)
    for s in range(steps):
        xb, yb = train.next()
        loss, acc = train_step(model, opt, plan, xb, yb, weight_learning_rate(s, steps, cfg.weight_lr,
                                                                           cfg.weight_lr_warmup), cfg.label_smoothing)
        if on_step is not None:
            on_step(s, loss, acc)
    return evaluate(net, plan, ctx.data.x_valid, ctx.data.y_valid, dist)
