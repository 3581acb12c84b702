"""Stand-alone training of one arch on the proxy task: the arch at the proxy scale (search.proxy),
fresh weights, no sharing, scored on the whole validation split. Used by random search for each
candidate and by benchmarks to compare final archs of different algorithms at equal budget."""
from __future__ import annotations

from .distributed import wrap
from .proxy import build_proxy_net
from .schedules import weight_learning_rate
from .training import evaluate_split, make_weight_optimizer, train_step


def train_standalone(ctx, arch, steps: int, seed: int, on_step=None) -> tuple[float, dict]:
    """(validation accuracy, proxy description) of `arch` (an Arch) after `steps` weight updates from fresh weights."""
    cfg, dist = ctx.cfg, ctx.dist
    net, _ = build_proxy_net(arch, cfg, ctx.data.num_classes, ctx.data.in_channels, seed)
    net = ctx.place(net)
    model = wrap(net, dist)
    peak = ctx.weight_lr
    opt = make_weight_optimizer(model, cfg, peak)
    train = ctx.stream("train", cfg.batch_size, seed=seed)
    for s in range(steps):
        xb, yb = train.next()
        loss, acc = train_step(model, opt, None, xb, yb, weight_learning_rate(s, steps, peak, cfg.weight_lr_warmup),
                               cfg.label_smoothing, amp=cfg.amp)
        if on_step is not None:
            on_step(s, loss, acc)
    getattr(train, "close", lambda: None)()
    return evaluate_split(net, None, ctx.data, "valid", dist, amp=cfg.amp), net.describe()
