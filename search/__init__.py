"""Hardware-aware architecture search on top of latbench's LatencyModel (DESIGN section 8).

The shared layer knows no algorithm; each algorithm owns its supernet, its knobs (a SearchConfig
subclass) and its runner, and plugs in through `search.registry`. Importing this package is cheap:
torch is imported by the modules that train, not here.

Shared modules, one idea each:
  config         SearchConfig: the knobs every algorithm shares, with the defaults
  registry       algorithm name -> runner + config class (lazy imports); make_config, run_search
  context        SearchContext: space, LatencyModel, proxy data, process group
  data           the proxy task: built-in digits, .npz arrays (in memory), image folders (-> folder_data)
  folder_data    image folders streamed by DataLoader workers: standard transforms, resumable shards
  splits         the fixed, seeded held-out split of the training data
  latency        LatencyModel for (space, table) + vectorised uniform sampling
  training       weight updates and evaluation on the proxy task
  schedules      the weight learning-rate schedule
  distributed    torch.distributed (DDP) helpers for torchrun launches; collectives device-checked
  checkpoint     checkpoint / resume of any runner's state; per-rank state digests for debugging
  proxy          an Arch at the proxy scale as a plain torch network
  standalone     stand-alone training of one arch (random-search candidates, benchmarks)
  progress       the progress bar
  results        result.json (deterministic) + timing.json (wall clock) + trajectory plot (atomic writes)
Algorithms:
  tunas/         TuNAS (DESIGN 8.1): supernet, controller, rewards, schedules, runner
  random_search  the random-search baseline (DESIGN 8.4)
"""
