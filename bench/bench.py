#!/usr/bin/env python3
"""Runs tern's benchmark kernels natively and under each wasm engine and
prints one table: per kernel the native time and, for every other column, its
time and its ratio to native, then the geometric mean of the ratios. A
second table gives, for the columns that compile (tern compile), each
kernel's compile time and artifact size, and the totals per MB of wasm.

Usage: bench/bench.py BUILD_DIR   (bench/run.sh and `make bench` call this)

Environment:
  BENCH_FILTER=REGEX    only kernels whose name matches (re.search)
  BENCH_COLUMNS=REGEX   only columns whose name matches (native always runs)
  BENCH_REPS=N          timed runs per cell, the minimum is reported (default 3)
  BENCH_TIMEOUT=SECS    limit for one run (default 300)
  BENCH_CLOCK=wall|cpu  what is timed: wall time (default) or user+sys CPU
  WASM_CC, NATIVE_CC    compilers (default clang --target=wasm32-wasi, gcc)

Every run's stdout must equal the native run's stdout (each kernel prints its
checksum); a difference is reported loudly, marks the cell MISMATCH, and
makes the script exit 1. A column whose runner is missing or fails shows
"n/a" with the reason as a footnote; that does not fail the script.
"""

import math
import os
import platform
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
KERNEL_DIR = BENCH_DIR / "kernels"
OPT_FLAGS = ["-O2"]
CLOCK = os.environ.get("BENCH_CLOCK", "wall")


@dataclass
class Column:
    """One way of running a kernel. Templates are formatted with the
    placeholders of `placeholders()`, then split like a shell command.
    `prepare` runs once per kernel, outside the timed runs (e.g. an AOT
    compile step); `needs` lists files that must exist for the column to
    run at all; `artifact` names what `prepare` writes, for the compile
    table (time per MB of wasm, artifact size)."""

    name: str
    command: str
    prepare: str = ""
    needs: list = field(default_factory=list)
    artifact: str = ""


BASELINE = "native"
NODE = "node --single-threaded-gc --no-warnings"

# The columns, in table order. To add an engine (tern AOT, JIT, ...), add a
# line here; nothing else in the script needs to change.
COLUMNS = [
    Column(BASELINE, "{native}"),
    Column("tern-interp", "{tern} run --mode interp {wasm}", needs=["{tern}"]),
    Column(
        "tern-aot-nosp",
        "{tern} run --mode aot --artifact {out}/{kernel}.nosp.aot {wasm}",
        prepare="{tern} compile --no-stable-points {wasm} -o {out}/{kernel}.nosp.aot",
        needs=["{tern}"],
        artifact="{out}/{kernel}.nosp.aot",
    ),
    Column(
        "tern-aot",
        "{tern} run --mode aot --artifact {out}/{kernel}.aot {wasm}",
        prepare="{tern} compile {wasm} -o {out}/{kernel}.aot",
        needs=["{tern}"],
        artifact="{out}/{kernel}.aot",
    ),
    Column(
        "tern-jit",
        "{tern} run --mode jit --cache-dir {out}/jit-cache {wasm}",
        prepare="{tern} run --mode jit --cache-dir {out}/jit-cache {wasm}",
        needs=["{tern}"],
    ),
    # Issue 18's comparison: the JIT with a cold cache (compiled on every
    # run, in memory), and --mode auto cold (starts interpreting, a child
    # compiles, the program moves over when the code is ready; killed if
    # the program ends first) and warm (the JIT's cache entry, from the
    # first instruction).
    Column("tern-jit-cold", "{tern} run --mode jit --no-cache {wasm}", needs=["{tern}"]),
    Column("tern-auto-cold", "{tern} run --mode auto --no-cache {wasm}", needs=["{tern}"]),
    Column(
        "tern-auto",
        "{tern} run --mode auto --cache-dir {out}/jit-cache {wasm}",
        prepare="{tern} run --mode jit --cache-dir {out}/jit-cache {wasm}",
        needs=["{tern}"],
    ),
    Column("node", NODE + " {bench}/node-wasi.mjs {wasm}"),
    Column("node-turbofan", NODE + " --no-liftoff {bench}/node-wasi.mjs {wasm}"),
]


def placeholders(build_dir, out_dir, kernel):
    return {
        "build": build_dir,
        "tern": build_dir / "tern",
        "bench": BENCH_DIR,
        "out": out_dir,
        "kernel": kernel,
        "native": out_dir / kernel,
        "wasm": out_dir / f"{kernel}.wasm",
    }


def expand(template, values):
    quoted = {k: shlex.quote(str(v)) for k, v in values.items()}
    return shlex.split(template.format(**quoted))


# ---------------------------------------------------------------- building


def compilers():
    native = shlex.split(os.environ.get("NATIVE_CC", "gcc"))
    wasm = shlex.split(os.environ.get("WASM_CC", "clang --target=wasm32-wasi"))
    return native, wasm


def build_kernel(source, out_dir):
    """Compiles one kernel both ways; returns a list of error strings."""
    native_cc, wasm_cc = compilers()
    deps = [source, KERNEL_DIR / "bench_util.h", Path(__file__)]
    errors = []
    outputs = ((native_cc, out_dir / source.stem), (wasm_cc, out_dir / f"{source.stem}.wasm"))
    for cc, out in outputs:
        if out.exists() and all(out.stat().st_mtime >= d.stat().st_mtime for d in deps):
            continue
        out.unlink(missing_ok=True)  # never run a stale binary after a failed build
        cmd = cc + OPT_FLAGS + ["-o", str(out), str(source), "-lm"]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            errors.append(f"{shlex.join(cmd)} failed:\n{result.stderr.strip()}")
    return errors


# ----------------------------------------------------------------- running


@dataclass
class Cell:
    seconds: float = None  # minimum over the runs, None when it did not run
    output: str = ""
    problem: str = ""  # why there is no time (n/a reason)
    mismatch: bool = False
    prepare_seconds: float = None  # the prepare step (compile), timed like the runs
    artifact_bytes: int = None


def reason_line(text):
    """The line of a failed run's output that best says why: the first one
    mentioning an error (node's "RuntimeError: ...", "tern: error: ..."),
    else the first one."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors + lines + [""])[0][:160]


def run_once(argv, timeout):
    """Runs argv once; returns (seconds, stdout, problem). Seconds is wall
    time, or the child's user+system CPU time with BENCH_CLOCK=cpu (steadier
    on a shared machine, but it adds up all of a runner's threads)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        return None, "", f"{argv[0]}: not found"
    except subprocess.TimeoutExpired:
        return None, "", f"timed out after {timeout}s"
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        why = reason_line(result.stderr) or reason_line(result.stdout)
        if result.returncode < 0:
            return None, result.stdout, f"killed by {signal.Signals(-result.returncode).name}"
        return None, result.stdout, f"exit {result.returncode}: {why}"
    if CLOCK == "cpu":
        elapsed = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, result.stdout, ""


def prepare_cell(column, values, timeout):
    """An empty Cell ready to be timed, or one that says why it cannot run."""
    needed = (Path(template.format(**values)) for template in column.needs)
    missing = [str(path) for path in needed if not path.exists()]
    if missing:
        return Cell(problem=f"{', '.join(missing)} not found")
    cell = Cell()
    if column.prepare:
        seconds, _, problem = run_once(expand(column.prepare, values), timeout)
        if problem:
            return Cell(problem=f"prepare: {problem}")
        cell.prepare_seconds = seconds
    if column.artifact:
        artifact = Path(column.artifact.format(**values))
        cell.artifact_bytes = artifact.stat().st_size if artifact.exists() else None
    return cell


def record(cell, seconds, output, problem):
    if problem:
        cell.seconds, cell.output, cell.problem = None, output, problem
    elif cell.seconds is not None and output != cell.output:
        cell.seconds, cell.problem = None, "output differs between repetitions"
    else:
        cell.output = output
        cell.seconds = seconds if cell.seconds is None else min(cell.seconds, seconds)


def measure_row(columns, values, reps, timeout):
    """Times every column on one program. The repetitions go round the
    columns rather than one column at a time, so a burst of load from
    elsewhere on the machine hits all columns alike instead of one."""
    cells = {c.name: prepare_cell(c, values, timeout) for c in columns}
    for _ in range(reps):
        for c in columns:
            cell = cells[c.name]
            if not cell.problem:
                record(cell, *run_once(expand(c.command, values), timeout))
    return cells


def check_against_baseline(kernel, name, cell, baseline):
    if cell.seconds is None or baseline.seconds is None or cell.output == baseline.output:
        return
    cell.mismatch = True
    print(
        f"\n*** CHECKSUM MISMATCH: {kernel} under {name}\n"
        f"    native: {baseline.output.strip()}\n"
        f"    {name}: {cell.output.strip()}\n",
        file=sys.stderr,
    )


# --------------------------------------------------------------- reporting


class Notes:
    """Numbers the distinct n/a reasons so each is printed once."""

    def __init__(self):
        self.reasons = []

    def mark(self, column, problem):
        text = f"{column}: {problem}"
        if text not in self.reasons:
            self.reasons.append(text)
        return f"n/a[{self.reasons.index(text) + 1}]"


def cell_text(name, cell, baseline, notes):
    if cell.mismatch:
        return f"{cell.seconds:.3f}s MISMATCH"
    if cell.seconds is None:
        return notes.mark(name, cell.problem)
    if name == BASELINE:
        return f"{cell.seconds:.3f}s"
    if baseline.seconds is None:
        return f"{cell.seconds:.3f}s"
    return f"{cell.seconds:.3f}s {cell.seconds / baseline.seconds:6.2f}x"


def geomean_text(name, rows, kernel_count):
    ratios = [
        row[name].seconds / row[BASELINE].seconds
        for row in rows.values()
        if row[name].seconds is not None
        and row[BASELINE].seconds is not None
        and not row[name].mismatch
    ]
    if name == BASELINE or not ratios:
        return "" if name == BASELINE else "n/a"
    mean = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    partial = "" if len(ratios) == kernel_count else f" ({len(ratios)}/{kernel_count})"
    return f"{mean:.2f}x{partial}"


def startup_text(name, cell, notes):
    return notes.mark(name, cell.problem) if cell.seconds is None else f"{cell.seconds:.3f}s"


def print_table(columns, rows, startup, notes):
    header = ["kernel"] + [c.name for c in columns]
    body = []
    mismatches = []
    for kernel, row in rows.items():
        baseline = row[BASELINE]
        bad = [c.name for c in columns if row[c.name].mismatch]
        mismatches += [f"{kernel} under {name}" for name in bad]
        label = f"{kernel} !" if bad else kernel
        body.append([label] + [cell_text(c.name, row[c.name], baseline, notes) for c in columns])
    body.append(["geomean"] + [geomean_text(c.name, rows, len(rows)) for c in columns])
    body.append(["(startup)"] + [startup_text(c.name, startup[c.name], notes) for c in columns])
    widths = [max(len(r[i]) for r in [header] + body) for i in range(len(header))]
    rule = ["-" * w for w in widths]
    for line in [header, rule] + body[:-2] + [rule] + body[-2:]:
        print("  ".join(text.ljust(w) for text, w in zip(line, widths)).rstrip())
    for i, reason in enumerate(notes.reasons, 1):
        print(f"[{i}] {reason}")
    if mismatches:
        print(f"! CHECKSUM MISMATCH (output differs from native): {', '.join(mismatches)}")


def print_compile_table(columns, rows, wasm_sizes):
    """Per kernel and compiling column: the compile step's time and the
    artifact's size; then totals as seconds per MB of wasm and artifact
    bytes per wasm byte."""
    compiled = [c for c in columns if c.artifact]
    if not compiled:
        return
    header = ["compile", "wasm KB"]
    for c in compiled:
        header += [f"{c.name} s", "artifact KB"]
    body = []
    totals = {c.name: [0.0, 0, 0] for c in compiled}  # seconds, artifact bytes, wasm bytes
    for kernel, row in rows.items():
        line = [kernel, f"{wasm_sizes[kernel] / 1024:.1f}"]
        for c in compiled:
            cell = row[c.name]
            if cell.prepare_seconds is None or cell.artifact_bytes is None:
                line += ["n/a", "n/a"]
                continue
            line += [f"{cell.prepare_seconds:.2f}", f"{cell.artifact_bytes / 1024:.1f}"]
            total = totals[c.name]
            total[0] += cell.prepare_seconds
            total[1] += cell.artifact_bytes
            total[2] += wasm_sizes[kernel]
        body.append(line)
    summary = ["total", f"{sum(wasm_sizes[k] for k in rows) / 1024:.1f}"]
    for c in compiled:
        seconds, artifact, wasm = totals[c.name]
        if not wasm:
            summary += ["n/a", "n/a"]
            continue
        summary += [f"{seconds / (wasm / 1e6):.1f} s/MB", f"{artifact / wasm:.2f}x wasm"]
    widths = [max(len(r[i]) for r in [header] + body + [summary]) for i in range(len(header))]
    rule = ["-" * w for w in widths]
    print()
    for line in [header, rule] + body + [rule, summary]:
        print("  ".join(text.ljust(w) for text, w in zip(line, widths)).rstrip())


def machine_facts():
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    tools = (compilers()[0][0], compilers()[1][0], "node")
    versions = ", ".join(f"{tool} {tool_version(tool)}" for tool in tools)
    return f"{model}, {os.cpu_count()} cores, {platform.machine()}; {versions}"


def tool_version(tool):
    if not shutil.which(tool):
        return "(not installed)"
    out = subprocess.run([tool, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"\d+\.\d+(\.\d+)?", out)
    return match.group(0) if match else "?"


# -------------------------------------------------------------------- main


def env_int(name, default):
    value = os.environ.get(name, str(default))
    if not value.isdigit() or int(value) < 1:
        sys.exit(f"bench: {name} must be a positive integer, got {value!r}")
    return int(value)


def selected(pattern_var, names):
    pattern = os.environ.get(pattern_var, "")
    try:
        regex = re.compile(pattern)
    except re.error as e:
        sys.exit(f"bench: {pattern_var}={pattern!r} is not a regex: {e}")
    return [n for n in names if regex.search(n)]


def run_program(source, columns, build_dir, out_dir, reps, timeout):
    """Builds and runs one program under every column; returns (row, ok)."""
    errors = build_kernel(source, out_dir)
    for error in errors:
        print(f"\n*** BUILD FAILED: {error}\n", file=sys.stderr)
    values = placeholders(build_dir, out_dir, source.stem)
    print(f"bench: {source.stem}", file=sys.stderr, flush=True)
    row = measure_row(columns, values, reps, timeout)
    for c in columns:
        check_against_baseline(source.stem, c.name, row[c.name], row[BASELINE])
    return row, not errors and not any(cell.mismatch for cell in row.values())


def main(argv):
    if len(argv) != 2:
        sys.exit("usage: bench/run.sh BUILD_DIR")
    if CLOCK not in ("wall", "cpu"):
        sys.exit(f"bench: BENCH_CLOCK must be wall or cpu, got {CLOCK!r}")
    build_dir = Path(argv[1]).resolve()
    out_dir = build_dir / "bench"
    out_dir.mkdir(parents=True, exist_ok=True)
    reps = env_int("BENCH_REPS", 3)
    timeout = env_int("BENCH_TIMEOUT", 300)
    kernels = selected("BENCH_FILTER", sorted(p.stem for p in KERNEL_DIR.glob("*.c")))
    names = set(selected("BENCH_COLUMNS", [c.name for c in COLUMNS])) | {BASELINE}
    columns = [c for c in COLUMNS if c.name in names]
    if not kernels:
        sys.exit("bench: no kernel matches BENCH_FILTER")

    load_before = os.getloadavg()[0]
    rows, wasm_sizes, ok = {}, {}, True
    for kernel in kernels:
        rows[kernel], kernel_ok = run_program(
            KERNEL_DIR / f"{kernel}.c", columns, build_dir, out_dir, reps, timeout
        )
        wasm = out_dir / f"{kernel}.wasm"
        wasm_sizes[kernel] = wasm.stat().st_size if wasm.exists() else 0
        ok &= kernel_ok
    startup, startup_ok = run_program(
        BENCH_DIR / "startup.c", columns, build_dir, out_dir, reps, timeout
    )
    load_after = os.getloadavg()[0]
    print(f"# {machine_facts()}")
    print(f"# {' '.join(OPT_FLAGS)}; min of {reps} runs; {CLOCK} time incl. process start")
    print(f"# load average {load_before:.2f} at start, {load_after:.2f} at end")
    print_table(columns, rows, startup, Notes())
    print_compile_table(columns, rows, wasm_sizes)
    return 0 if ok and startup_ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
