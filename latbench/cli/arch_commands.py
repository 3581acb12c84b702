"""Commands about architectures and spaces: macs, spaces, sample."""
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
    """MACs (multiply-adds) and parameters of ARCH (a latbench-arch/1 file or a shipped reference name).

    \b
    Example:
      latbench macs mobilenetv2
      latbench macs my_arch.json --json
    """
    a = load_arch_arg(arch)
    rows = [{"layer": s.index, "type": s.type, "in": s.cin, "out": s.cout, "mid": s.mid,
             "resolution": s.hin, "macs": s.macs, "params": s.params} for s in a.shapes()]
    data = {"name": a.name, "macs": a.macs, "params": a.params, "resolution": a.resolution, "layers": rows}
    lines = [f"{'#':>3} {'type':7} {'in':>5} {'mid':>5} {'out':>5} {'res':>4} {'MACs':>12} {'params':>10}"]
    for r in rows:
        lines.append(f"{r['layer']:>3} {r['type']:7} {r['in']:>5} {r['mid']:>5} {r['out']:>5} {r['resolution']:>4} "
                     f"{r['macs']:>12,} {r['params']:>10,}")
    lines.append(f"{a.name}: {a.macs / 1e6:.1f}M MACs, {a.params / 1e6:.3f}M params at {a.resolution}x{a.resolution}")
    emit(data, as_json, "\n".join(lines))


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
