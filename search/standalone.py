"""Stand-alone training of one arch on the proxy task: the arch at the proxy scale (search.proxy),
fresh weights, no sharing, scored on the whole validation split. Used by random search for each
candidate and by benchmarks to compare final archs of different algorithms at equal budget."""
from __future__ import annotations

from .distributed import BatchStream, wrap
from .proxy import build_proxy_net
from .schedules import weight_learning_rate
from .training import evaluate, make_weight_optimizer, train_step


def train_standalone(ctx, arch, steps: int, seed: int, on_step=None) -> tuple[float, dict]:
    """(validation accuracy, proxy description) of `arch` (an Arch) after `steps` weight updates from fresh weights."""
    cfg, dist = ctx.cfg, ctx.dist
    net, _ = build_proxy_net(arch, cfg, ctx.data.num_classes, ctx.data.in_channels, seed)
    net = net.to(dist.device)
    model = wrap(net, dist)
    opt = make_weight_optimizer(model, cfg)
    train = BatchStream(ctx.data.x_train, ctx.data.y_train, cfg.batch_size, dist, seed=seed)
    for s in range(steps):
        xb, yb = train.next()
        loss, acc = train_step(model, opt, None, xb, yb, weight_learning_rate(s, steps, cfg.weight_lr,
                                                                           cfg.weight_lr_warmup), cfg.label_smoothing)
        if on_step is not None:
            on_step(s, loss, acc)
    return evaluate(net, None, ctx.data.x_valid, ctx.data.y_valid, dist), net.describe()
