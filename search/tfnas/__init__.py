"""TF-NAS (Hu et al., ECCV 2020; DESIGN 8.2): differentiable, latency-constrained search at three
levels — operation (bi-sampling), depth (sink-connecting), width (elasticity scaling).

Modules:
  config       TFNASConfig: TF-NAS's own knobs (the common ones come from SearchConfig)
  widths       elastic mid widths, the space as the search sees it (ElasticView) and its pricing
  supernet     the proxy supernet: 8 separate MBInvRes ops per block, sink-connected stages
  arch_params  α / β, bi-sampling, Gumbel-softmax weights, the temperature schedule
  elasticity   elasticity scaling of the derived arch's widths to the target
  run          the search loop: run_tfnas(ctx)
  plot         trajectory.png: latency, losses, temperature, depth distribution
Importing this package is cheap; torch is imported by supernet, arch_params and run.
"""
