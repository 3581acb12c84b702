"""Hardware-aware architecture search on top of latbench's LatencyModel (DESIGN section 8).

Algorithms (pluggable, see `search.registry`): `tunas` (TuNAS, section 8.1) and `random`
(rejection-sampled random search, section 8.4); `tfnas` and `netadaptv2` are registered as
not implemented yet. Importing this package is cheap: torch is imported by the modules that
train (supernet, tunas, random_search), not here.

Modules, one idea each:
  config         SearchConfig: every knob of a search, with the defaults
  registry       algorithm name -> runner (lazy imports); run_search(cfg)
  context        SearchContext: space, LatencyModel, proxy data, process group (+ option checks)
  data           the proxy task: built-in digits, .npz arrays, image folders
  latency        LatencyModel for (space, table) + vectorised uniform sampling
  layers         shared conv / depthwise / BN / SE primitives (channel masking, kernel collapsing)
  supernet       weight-sharing supernet built from a TuNAS space's template and settings
  plan           index list (+ warmup flags) -> per-layer execution plan of the supernet
  policy         independent categorical policy (logits start at 0), hierarchical log-probs
  rewards        absolute / MnasNet soft / hard rewards
  schedules      RL learning-rate schedule, op/filter warmup probability, weight lr
  training       weight updates and evaluation on the proxy task
  distributed    torch.distributed (DDP) helpers for torchrun launches
  refine         optional final latency refinement of the argmax (documented; --no-refine)
  standalone     stand-alone training of one arch (random-search candidates, benchmarks)
  results        result.json + trajectory plot (atomic writes)
  tunas          the TuNAS search loop
  random_search  the random-search baseline
"""
