"""The `mcugen` command: build, verify, run, bench, inspect, flash.

Each subcommand is a thin handler over the library; user errors end as one line on stderr and
exit status 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mcugen.errors import UserError


def _inspect(args) -> int:
    from mcugen.analysis import layer_costs
    from mcugen.frontend import load_tflite

    layers = layer_costs(load_tflite(args.model))
    totals = {"macs": sum(l.macs for l in layers), "weight_bytes": sum(l.weight_bytes for l in layers)}
    if args.json:
        keys = ("index", "op", "inputs", "outputs", "macs", "weight_bytes")
        print(json.dumps({"layers": [{k: getattr(l, k) for k in keys} for l in layers], "totals": totals}, indent=2))
        return 0

    def shapes(ts):
        return ", ".join(f"{t['dtype']}{t['shape']}" for t in ts)

    rows = [(str(l.index), l.op, shapes(l.inputs), shapes(l.outputs), f"{l.weight_bytes:,}", f"{l.macs:,}") for l in layers]
    rows.append(("", "total", "", "", f"{totals['weight_bytes']:,}", f"{totals['macs']:,}"))
    header = ("#", "op", "inputs", "outputs", "weight bytes", "MACs")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.rjust(w) if i in (0, 4, 5) else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))).rstrip())
    return 0


def _input_sets(args, graph):
    from mcugen.inputs import load_inputs, random_inputs

    if args.input:
        return load_inputs(Path(args.input), graph)
    return random_inputs(graph, args.inputs, args.seed)


def _verify(args) -> int:
    target = Path(args.target)
    if target.is_dir():
        from mcugen.pipeline import verify_output_dir

        result = verify_output_dir(target, where=args.on, count=args.inputs, seed=args.seed,
                                   input_file=Path(args.input) if args.input else None)
    else:
        from mcugen.frontend import load_tflite
        from mcugen.verify import reference_vs_tflm

        if args.against != "tflm":
            raise UserError("verify MODEL.tflite needs --against tflm (or give a build output directory)")
        graph = load_tflite(target)
        result = reference_vs_tflm(target, _input_sets(args, graph))
    print(result.summary())
    if result.first_mismatch:
        print(f"first mismatch: {result.first_mismatch}")
    return 0 if result.ok else 1


def _build(args) -> int:
    from mcugen.pipeline import BuildOptions, build

    options = BuildOptions(
        model=Path(args.model), board=args.board, out_dir=Path(args.output), name=args.name,
        ram=args.ram, flash=args.flash, verify=not args.no_verify, verify_inputs=args.verify_inputs,
        firmware=not args.no_firmware, bits=args.bits, bits_strategy=args.bits_strategy,
        calib=Path(args.calib) if args.calib else None, calib_method=args.calib_method,
        prune=args.prune, prune_criterion=args.prune_criterion, macs=args.macs,
    )
    return 0 if build(options) else 1


def _run(args) -> int:
    from mcugen.pipeline import run_output_dir

    if not args.qemu:
        raise UserError("mcugen run needs --qemu (the only runner without hardware)")
    for line in run_output_dir(Path(args.out), input_file=Path(args.input) if args.input else None, seed=args.seed):
        print(line)
    return 0


def _bench(args) -> int:
    from mcugen.pipeline import bench_output_dir

    bench = bench_output_dir(Path(args.out))
    print(json.dumps(bench.as_json(), indent=2) if args.json else bench.as_text())
    return 0


def _flash(args) -> int:
    from mcugen.pipeline import flash_output_dir

    print(flash_output_dir(Path(args.out), probe=args.probe, dry_run=args.dry_run))
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcugen", description="Compile TFLite models to bit-exact C for microcontrollers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("build", help="compile a model into C sources, a report and firmware")
    p.add_argument("model", help="the .tflite model")
    p.add_argument("--board", required=True, help="target board (see boards/*.toml)")
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--ram", help="RAM (RW) budget, e.g. 320K; default: the board's RAM")
    p.add_argument("--flash", help="flash (RO) budget, e.g. 1M; default: the board's flash")
    p.add_argument("--name", default="model", help="prefix of the generated API (default: model)")
    p.add_argument("--no-verify", action="store_true", help="skip the bit-exact host check")
    p.add_argument("--verify-inputs", type=int, default=10, help="random inputs for the host check (default 10)")
    p.add_argument("--no-firmware", action="store_true", help="do not cross-compile the firmware ELF")
    p.add_argument("--bits", default="auto",
                   help="auto (default: lower precision only where a budget needs it), 8, or uniform widths such as w4a8")
    p.add_argument("--bits-strategy", choices=["sensitivity", "rusci"], default="sensitivity",
                   help="how --bits auto picks layers to cut (default sensitivity)")
    p.add_argument("--calib", help="calibration samples: a directory of .npy files, a .npz or a .npy file")
    p.add_argument("--calib-method", choices=["minmax", "ema", "percentile", "kl", "aciq", "mse"], default=None,
                   help="activation range observer for float models (default: see README)")
    p.add_argument("--prune", help="structured pruning: a fraction of the channels of every prunable layer (e.g. 0.3), "
                   "a .json/.toml file of {layer: fraction}, or auto (only as far as --flash, --ram and --macs need)")
    p.add_argument("--prune-criterion", choices=["l1", "l2", "apoz", "mean", "bn"], default="l1",
                   help="channel importance for --prune (default l1)")
    p.add_argument("--macs", help="multiply-accumulate budget for --prune auto, e.g. 2000000 or 2M")
    p.set_defaults(handler=_build)

    p = sub.add_parser("verify", help="check bit-exactness: a model against TFLM, or a build against the reference")
    p.add_argument("target", help="a .tflite model (with --against tflm) or a build output directory")
    p.add_argument("--against", choices=["tflm"], help="oracle for a .tflite model")
    p.add_argument("--target", dest="on", choices=["host", "qemu"], default="host", help="where a build runs (default host)")
    p.add_argument("--inputs", type=int, default=20, help="number of random inputs (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs (default 0)")
    p.add_argument("--input", help="a .npy file of inputs instead of random ones")
    p.set_defaults(handler=_verify)

    p = sub.add_parser("run", help="run a build's firmware and print its outputs")
    p.add_argument("out", help="build output directory")
    p.add_argument("--qemu", action="store_true", help="run under QEMU")
    p.add_argument("--input", help="a .npy file of inputs (default: one random input)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random input (default 0)")
    p.set_defaults(handler=_run)

    p = sub.add_parser("bench", help="count instructions of one inference under QEMU; sizes from the ELF")
    p.add_argument("out", help="build output directory")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_bench)

    p = sub.add_parser("inspect", help="per-layer shapes, weight bytes and MACs of a model")
    p.add_argument("model", help="the .tflite model")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(handler=_inspect)

    p = sub.add_parser("flash", help="flash a build's firmware to a connected board")
    p.add_argument("out", help="build output directory")
    p.add_argument("--probe", choices=["pyocd", "openocd", "stlink"], default="pyocd", help="flashing tool (default pyocd)")
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")
    p.set_defaults(handler=_flash)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"mcugen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mcugen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
