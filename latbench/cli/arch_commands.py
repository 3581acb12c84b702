"""Commands about architectures and spaces: macs, export, spaces, sample."""
from __future__ import annotations

import click

from ..arch import format_indices, parse_indices
from ..errors import BadInput
from ..fileio import check_writable
from .app import emit, json_option, main
from .options import load_arch_arg


@main.command()
@click.argument("arch")
@json_option
def macs(arch, as_json):
    """MACs (multiply-adds) and parameters of ARCH (a latbench-arch/1 file, a shipped reference name,
    or a search's result.json: its final arch).

    \b
    Example:
      latbench macs mobilenetv2
      latbench macs my_arch.json --json
    """
    a = load_arch_arg(arch)
    rows = [{"layer": s.index, "type": s.type, "in": s.cin, "out": s.cout, "mid": s.mid,
             "resolution": s.hin, "macs": s.macs, "params": s.params} for s in a.shapes()]
    data = {"name": a.name, "macs": a.macs, "elementwise_ops": a.elementwise_ops, "params": a.params,
            "resolution": a.resolution, "layers": rows}
    lines = [f"{'#':>3} {'type':7} {'in':>5} {'mid':>5} {'out':>5} {'res':>4} {'MACs':>12} {'params':>10}"]
    for r in rows:
        lines.append(f"{r['layer']:>3} {r['type']:7} {r['in']:>5} {r['mid']:>5} {r['out']:>5} {r['resolution']:>4} "
                     f"{r['macs']:>12,} {r['params']:>10,}")
    lines.append(f"{a.name}: {a.macs / 1e6:.1f}M MACs, {a.params / 1e6:.3f}M params at {a.resolution}x{a.resolution}"
                 f" (+{a.elementwise_ops / 1e6:.1f}M element-wise ops: SE pooling/scaling, residual adds, pooling)")
    emit(data, as_json, "\n".join(lines))


@main.command()
@click.argument("arch")
@click.option("--format", "fmt", type=click.Choice(["onnx", "tflite", "torchscript"]), required=True,
              help="onnx (ONNX Runtime), tflite (LiteRT / Android), torchscript (PyTorch).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="File to write.")
@click.option("--batch", type=click.IntRange(1), default=1, show_default=True, help="Batch dimension of the input.")
@json_option
def export(arch, fmt, output, batch, as_json):
    """Write ARCH as a deployable model file, built by the same builders the profiler measures.

    ARCH: a latbench-arch/1 file, a shipped reference name, or a search's result.json (its final
    arch). Same graph as the one timed for the tables, so their prediction applies; the weights are
    the builders' seeded ones (train the network before using its outputs). Input: NCHW for onnx and
    torchscript, NHWC for tflite.

    \b
    Example:
      latbench export latbench-search/result.json --format tflite -o found.tflite
      latbench export mobilenetv2 --format onnx -o mbv2.onnx --json
    """
    from ..build.export import export_arch
    from ..references import resolve_arch

    a = resolve_arch(arch)
    data = export_arch(a, fmt, output, batch)
    emit(data, as_json, f"wrote {data['path']} ({fmt}, {data['bytes']:,} bytes, input {data['layout']} "
                        f"{'x'.join(map(str, data['input_shape']))}; {a.name}: {a.macs / 1e6:.1f}M MACs)")


@main.command()
@json_option
def spaces(as_json):
    """List the search spaces with their size and reference models.

    \b
    Example:
      latbench spaces --json
    """
    from ..spaces import get_space, space_names

    infos = [get_space(n).describe() for n in space_names()]
    lines = []
    for d in infos:
        lines.append(f"{d['name']:24} {d['decisions']:3} decisions  ~10^{d['log10_cardinality']:<6} "
                     f"references: {', '.join(d['references']) or '-'}")
    emit(infos, as_json, "\n".join(lines))


@main.command()
@click.option("--space", "space_name", required=True, help="Search space name (see `latbench spaces`).")
@click.option("--seed", type=int, default=None, help="Seed for a uniform random sample.")
@click.option("--indices", default=None, help="Decode this index list (e.g. 0:2:1:...) instead of sampling.")
@click.option("--reference", default=None, help="Decode a reference model of the space by name.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the Arch JSON here.")
def sample(space_name, seed, indices, reference, output):
    """Print (or write) an Arch of a space: sampled, decoded from indices, or a reference model.

    \b
    Example:
      latbench sample --space proxylessnas --seed 3
      latbench sample --space proxylessnas --reference ProxylessNAS-Mobile -o pm.json
    """
    from ..spaces import get_space

    space = get_space(space_name)
    if sum(x is not None for x in (seed, indices, reference)) > 1:
        raise BadInput("give at most one of --seed, --indices, --reference")
    if output:
        check_writable(output, "-o")
    if indices is not None:
        idx = space.check_indices(parse_indices(indices, "--indices"), "--indices")
    elif reference is not None:
        refs = space.reference_models()
        if reference not in refs:
            raise BadInput(f"--reference: space {space.name} has no reference {reference!r} (known: {', '.join(refs) or 'none'})")
        idx = refs[reference]
    else:
        idx = space.sample(seed)
    arch = space.decode(idx)
    if output:
        arch.save(output)
        click.echo(f"wrote {output} ({format_indices(idx)})", err=True)
    else:
        click.echo(arch.to_json(), nl=False)
