"""NetAdaptV2 (Yang et al., CVPR 2021; DESIGN 8.3): super-network trained with ordered dropout and
channel-level bypass, searched by multi-layer coordinate descent on a non-differentiable metric.

Modules: config (knobs and presets), supernet (OD / CBC / superkernel super-network), mcd (the
optimizer, generic over index lists), metric (latency from a table or MACs, per arch), runner
(`run_netadaptv2(ctx)`).
"""
