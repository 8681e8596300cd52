#!/usr/bin/env python3
"""Runs sdpa_bench and turns its JSON into a Markdown table and a chart.

    python3 scripts/bench.py                       # everything, 5 repetitions
    python3 scripts/bench.py --filter 'AVX3|Blas' --repetitions 3
    python3 scripts/bench.py --from-json out/bench/sdpa_bench.json  # re-render

Writes to --out-dir (default out/bench):
  sdpa_bench.json  Google Benchmark's JSON (medians over the repetitions, and
                   the ceilings sdpa_bench measured at startup in "context");
  sdpa_bench.md    one row per benchmark: median time, GFLOP/s, % of the FMA
                   peak, K/V GB/s and % of read bandwidth (decode), and the
                   ratio to BM_UnfusedBlas of the same shape and threads;
  sdpa_bench.png   GFLOP/s per ISA and shape with the peak lines, and decode
                   GB/s with the bandwidth lines (needs matplotlib).

Standard library only; matplotlib is optional (python3 -m pip install
matplotlib). sdpa_bench is built into --build-dir (default build-bench) when
it is not there yet. Arguments after "--" go to sdpa_bench unchanged.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASELINE = "UnfusedBlas"


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--filter",
        default="",
        help="regular expression on benchmark names (--benchmark_filter); "
        "a leading '-' excludes, e.g. -SCALAR|SSSE3",
    )
    parser.add_argument(
        "--repetitions",
        type=int,
        default=5,
        help="repetitions per benchmark; the table shows medians (default 5)",
    )
    parser.add_argument(
        "--min-time",
        type=float,
        default=None,
        help="seconds per repetition (--benchmark_min_time; default: "
        "Google Benchmark's 0.5)",
    )
    parser.add_argument(
        "--out-dir",
        default=os.path.join(ROOT, "out", "bench"),
        help="where the JSON, Markdown and PNG go (default out/bench)",
    )
    parser.add_argument(
        "--build-dir",
        default=os.path.join(ROOT, "build-bench"),
        help="build tree holding benchmarks/sdpa_bench (default build-bench)",
    )
    parser.add_argument("--binary", help="sdpa_bench to run (overrides --build-dir)")
    parser.add_argument(
        "--from-json",
        metavar="FILE",
        help="do not run anything: render the table and chart of this JSON",
    )
    parser.add_argument(
        "--openblas-coretype",
        default="auto",
        help="OPENBLAS_CORETYPE for the BM_UnfusedBlas baseline. 'auto' "
        "(default): SkylakeX on an AVX-512 CPU unless the variable is already "
        "set, because an OpenBLAS older than the CPU (Debian 12's 0.3.21 on "
        "Zen 5) falls back to its AVX2 kernels and the baseline would be a "
        "straw man; 'default': OpenBLAS's own choice; else the name to use",
    )
    parser.add_argument(
        "--no-interleave",
        action="store_true",
        help="run each benchmark's repetitions back to back. By default they "
        "are interleaved in random order with every other benchmark's "
        "(--benchmark_enable_random_interleaving), so that a few noisy "
        "seconds on a shared host spoil one repetition of several "
        "benchmarks, which the median discards, rather than all repetitions "
        "of one",
    )
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("bench_args", nargs="*", help="after --: for sdpa_bench")
    return parser.parse_args()


def run(command, **kwargs):
    print("+ " + " ".join(shlex.quote(c) for c in command), flush=True)
    subprocess.run(command, check=True, **kwargs)


def ensure_binary(args):
    if args.binary:
        return args.binary
    binary = os.path.join(args.build_dir, "benchmarks", "sdpa_bench")
    if os.path.exists(binary):
        # Bring an existing build up to date with the source tree (a no-op
        # when it is): a stale binary would report numbers of other code.
        run(
            [
                "cmake", "--build", args.build_dir, "--target", "sdpa_bench",
                "-j", str(os.cpu_count() or 1),
            ]
        )
    else:
        print("sdpa_bench not built yet: building it in " + args.build_dir)
        run(
            [
                "cmake", "-S", ROOT, "-B", args.build_dir,
                "-DCMAKE_BUILD_TYPE=Release", "-DSDPA_BUILD_BENCHMARKS=ON",
                "-DSDPA_BUILD_TESTS=OFF", "-DSDPA_BUILD_EXAMPLES=OFF",
            ]
        )
        run(
            [
                "cmake", "--build", args.build_dir, "--target", "sdpa_bench",
                "-j", str(os.cpu_count() or 1),
            ]
        )
    return binary


def cpu_has_avx512():
    try:
        with open("/proc/cpuinfo") as f:
            flags = set(f.read().split())
    except OSError:
        return False
    return {"avx512f", "avx512bw", "avx512dq", "avx512vl"} <= flags


def suite_environment(args):
    env = dict(os.environ)
    coretype = args.openblas_coretype
    if coretype == "auto":
        if "OPENBLAS_CORETYPE" in env or not cpu_has_avx512():
            return env
        coretype = "SkylakeX"
    elif coretype == "default":
        env.pop("OPENBLAS_CORETYPE", None)
        return env
    print("OPENBLAS_CORETYPE=%s for the OpenBLAS baseline" % coretype)
    env["OPENBLAS_CORETYPE"] = coretype
    return env


def source_revision():
    """`git describe --always --dirty` of the source tree, or None."""
    try:
        return subprocess.run(
            ["git", "-C", ROOT, "describe", "--always", "--dirty"],
            capture_output=True, text=True, check=True,
        ).stdout.strip() or None
    except (OSError, subprocess.CalledProcessError):
        return None


def run_suite(args, json_path):
    """Runs sdpa_bench; its console output stays visible, JSON goes to a file.
    The JSON's context also records the source revision it was built from
    (only meaningful for the default --build-dir, which is rebuilt first)."""
    binary = ensure_binary(args)
    # Taken now, not after the run: commits made while it runs (minutes)
    # are not in the binary.
    revision = source_revision()
    command = [
        binary,
        "--benchmark_out=" + json_path,
        "--benchmark_out_format=json",
        "--benchmark_repetitions=%d" % args.repetitions,
        "--benchmark_report_aggregates_only=true",
    ]
    if args.filter:
        command.append("--benchmark_filter=" + args.filter)
    if args.min_time is not None:
        command.append("--benchmark_min_time=%g" % args.min_time)
    if not args.no_interleave:
        command.append("--benchmark_enable_random_interleaving=true")
    command += args.bench_args
    run(command, env=suite_environment(args))
    if revision and not args.binary:
        with open(json_path) as f:
            data = json.load(f)
        data.setdefault("context", {})["source"] = revision
        with open(json_path, "w") as f:
            json.dump(data, f, indent=2)


class Result:
    """One benchmark: its median (or only) run."""

    def __init__(self, entry):
        name = entry.get("run_name") or entry["name"]
        self.name = re.sub(r"/(real_time|manual_time)$", "", name)
        parts = self.name.split("/")
        self.kind = parts[0][len("BM_") :]  # Attention, UnfusedBlas, Naive
        self.isa = parts[1] if self.kind == "Attention" else self.kind
        self.shape = parts[-2]
        self.threads = int(parts[-1].split(":")[1])
        self.error = entry.get("error_message") if entry.get("error_occurred") else None
        self.time = entry.get("real_time")
        self.time_unit = entry.get("time_unit", "ns")
        self.gflops = entry.get("GFLOPS")
        self.pct_peak = entry.get("pct_peak")
        self.kv_gbps = entry.get("KV_GBps")
        self.pct_bw = entry.get("pct_bw")

    @property
    def decode(self):
        return self.kv_gbps is not None


def load_results(json_path):
    with open(json_path) as f:
        data = json.load(f)
    medians, singles, order = {}, {}, []
    for entry in data.get("benchmarks", []):
        key = entry.get("run_name") or entry["name"]
        if key not in order:
            order.append(key)
        run_type = entry.get("run_type", "iteration")
        if run_type == "aggregate":
            if entry.get("aggregate_name") == "median":
                medians[key] = entry
        elif key not in singles or entry.get("error_occurred"):
            singles[key] = entry
    results = []
    for key in order:
        entry = medians.get(key) or singles.get(key)
        if entry is not None:
            results.append(Result(entry))
    return data.get("context", {}), results


def ceilings(context):
    """{(isa, threads): GFLOP/s} and {threads: GB/s} from the JSON context.
    The BF16 dot-product peak (AVX3_ZEN4 CPUs) is the pseudo-ISA
    "BF16 dot"."""
    peaks, bandwidth = {}, {}
    for key, value in context.items():
        m = re.match(r"fma_peak_gflops/(\w+)/threads:(\d+)$", key)
        if m:
            peaks[(m.group(1), int(m.group(2)))] = float(value)
        m = re.match(r"bf16_dot_peak_gflops/threads:(\d+)$", key)
        if m and float(value) > 0:
            peaks[("BF16 dot", int(m.group(1)))] = float(value)
        m = re.match(r"read_bw_gbps/threads:(\d+)$", key)
        if m:
            bandwidth[int(m.group(1))] = float(value)
    return peaks, bandwidth


def ceiling_warnings(peaks, bandwidth):
    """Signs that the ceilings were measured while the machine was busy.

    A low ceiling inflates every percentage against it, so say so."""
    warnings = []
    for (isa, threads), peak in sorted(peaks.items()):
        single = peaks.get((isa, 1))
        if threads > 1 and single and peak < 0.8 * threads * single:
            warnings.append(
                "the %s FMA peak on %d threads (%.1f) is under 80%% of %d x "
                "its 1-thread peak (%.1f): SMT, or a busy machine; %% of peak "
                "on %d threads may read high." % (isa, threads, peak, threads, single, threads)
            )
    single_bw = bandwidth.get(1)
    for threads, bw in sorted(bandwidth.items()):
        if threads > 1 and single_bw and bw < 1.1 * single_bw:
            warnings.append(
                "read bandwidth on %d threads (%.1f GB/s) is hardly above 1 "
                "thread's (%.1f GB/s): a busy machine? %% of bandwidth on %d "
                "threads may read high." % (threads, bw, single_bw, threads)
            )
    return warnings


def fmt(value, digits=1):
    return "" if value is None else "%.*f" % (digits, value)


def markdown(context, results):
    peaks, bandwidth = ceilings(context)
    baseline = {
        (r.shape, r.threads): r.gflops
        for r in results
        if r.kind == BASELINE and r.gflops
    }
    lines = ["# sdpa_bench", ""]
    load = context.get("load_avg") or []
    lines.append(
        "Host: %s CPUs at %s MHz (as Google Benchmark reports it), load "
        "average %s at start; sdpa %s (source %s); OpenBLAS kernels: %s; %s."
        % (
            context.get("num_cpus", "?"),
            context.get("mhz_per_cpu", "?"),
            " ".join("%.2f" % x for x in load) or "?",
            context.get("sdpa_version", "?"),
            context.get("source", "?"),
            context.get("openblas_core", "?"),
            context.get("date", "?"),
        )
    )
    lines.append("")
    lines.append("Ceilings measured by sdpa_bench at startup:")
    lines.append("")
    thread_counts = sorted({t for _, t in peaks} | set(bandwidth))
    isas = sorted({i for i, _ in peaks}, key=lambda i: -max(
        peaks.get((i, t), 0) for t in thread_counts))
    lines.append(
        "| threads | "
        + " | ".join(("%s GFLOP/s" if i == "BF16 dot" else "%s FMA GFLOP/s")
                     % i for i in isas)
        + " | read GB/s |"
    )
    lines.append("|---:|" + "---:|" * (len(isas) + 1))
    for t in thread_counts:
        lines.append(
            "| %d | " % t
            + " | ".join(fmt(peaks.get((i, t))) for i in isas)
            + " | %s |" % fmt(bandwidth.get(t))
        )
    for warning in ceiling_warnings(peaks, bandwidth):
        lines.append("")
        lines.append("**Warning:** " + warning)
    lines.append("")
    lines.append(
        "GFLOP/s counts 2·(Dk+Dv) flops per visible (query, key) pair; "
        "% peak is against the FMA peak of the same ISA and thread count "
        "(baselines: the best ISA's; AVX3_ZEN4 with BF16 inputs: the "
        "roofline of the BF16 dot peak for Q·Kᵀ, and for P·V with "
        "SDPA_FLAG_BF16_WEIGHTS, and the FMA peak for the rest, or the "
        "FMA peak where that is higher: a CPU whose BF16 dots are slow); "
        "x OpenBLAS is GFLOP/s over "
        "BM_UnfusedBlas of the same shape and threads. Medians of the "
        "repetitions."
    )
    lines.append("")
    lines.append(
        "| benchmark | time | GFLOP/s | % peak | K/V GB/s | % bandwidth "
        "| x OpenBLAS |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        if r.error:
            lines.append("| %s | error: %s | | | | | |" % (r.name, r.error))
            continue
        ratio = baseline.get((r.shape, r.threads))
        ratio_text = fmt(r.gflops / ratio, 2) if ratio and r.gflops else ""
        lines.append(
            "| %s | %s %s | %s | %s | %s | %s | %s |"
            % (
                r.name,
                fmt(r.time, 3 if r.time_unit == "ms" else 1),
                r.time_unit,
                fmt(r.gflops),
                fmt(r.pct_peak),
                fmt(r.kv_gbps),
                fmt(r.pct_bw),
                ratio_text,
            )
        )
    return "\n".join(lines) + "\n"


def plot(context, results, png_path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print(
            "matplotlib is not installed: no chart (python3 -m pip install "
            "matplotlib, then rerun with --from-json %s)" % os.path.join(
                os.path.dirname(png_path), "sdpa_bench.json")
        )
        return False
    peaks, bandwidth = ceilings(context)
    ok = [r for r in results if not r.error and r.gflops is not None]
    thread_counts = sorted({r.threads for r in ok})
    if not ok:
        print("no results to plot")
        return False
    series = []  # ISAs in first-seen order, the baselines last
    for r in ok:
        if r.isa not in series:
            series.append(r.isa)
    series.sort(key=lambda s: s in (BASELINE, "Naive"))
    colors = {s: plt.cm.tab10(i % 10) for i, s in enumerate(series)}
    panels = [("compute", "GFLOP/s"), ("decode", "K/V GB/s")]
    fig, axes = plt.subplots(
        len(thread_counts), 2, squeeze=False,
        figsize=(22, 5.5 * len(thread_counts)),
        gridspec_kw={"width_ratios": [3, 1]},
    )
    for row, threads in enumerate(thread_counts):
        for col, (panel, ylabel) in enumerate(panels):
            ax = axes[row][col]
            chosen = [
                r for r in ok
                if r.threads == threads and r.decode == (panel == "decode")
            ]
            shapes = []
            for r in chosen:
                if r.shape not in shapes:
                    shapes.append(r.shape)
            present = [s for s in series if any(r.isa == s for r in chosen)]
            width = 0.8 / max(len(present), 1)
            for k, s in enumerate(present):
                xs, ys = [], []
                for r in chosen:
                    if r.isa == s:
                        xs.append(shapes.index(r.shape) + (k - len(present) / 2 + 0.5) * width)
                        ys.append(r.kv_gbps if panel == "decode" else r.gflops)
                ax.bar(xs, ys, width, label=s, color=colors[s])
            if panel == "compute":
                for s in present:
                    peak = peaks.get((s, threads))
                    if peak:
                        ax.axhline(peak, color=colors[s], linestyle="--", linewidth=1)
                        ax.text(len(shapes) - 0.5, peak, " %s peak %.0f" % (s, peak),
                                color=colors[s], va="bottom", ha="right", fontsize=8)
            elif bandwidth.get(threads):
                bw = bandwidth[threads]
                ax.axhline(bw, color="black", linestyle="--", linewidth=1)
                ax.text(len(shapes) - 0.5, bw, "read bandwidth %.1f" % bw,
                        va="bottom", ha="right", fontsize=8)
            ax.set_xticks(range(len(shapes)))
            ax.set_xticklabels(shapes, rotation=60, ha="right", fontsize=7)
            ax.set_ylabel(ylabel)
            ax.set_title("%s, threads: %d" % (
                "prefill and other compute-bound shapes" if panel == "compute"
                else "decode", threads))
            if present:
                ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)
    return True


def main():
    args = parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    json_path = os.path.join(args.out_dir, "sdpa_bench.json")
    if args.from_json:
        json_path = args.from_json
    else:
        run_suite(args, json_path)
    context, results = load_results(json_path)
    if not results:
        print("no benchmark results in %s (did --filter match nothing?)" % json_path)
        return 1
    md_path = os.path.join(args.out_dir, "sdpa_bench.md")
    text = markdown(context, results)
    with open(md_path, "w") as f:
        f.write(text)
    print()
    print(text)
    print("wrote " + md_path)
    if not args.no_plot:
        png_path = os.path.join(args.out_dir, "sdpa_bench.png")
        if plot(context, results, png_path):
            print("wrote " + png_path)
    errors = [r for r in results if r.error]
    if errors:
        print("%d benchmark(s) failed, e.g. %s: %s" % (len(errors), errors[0].name, errors[0].error))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
