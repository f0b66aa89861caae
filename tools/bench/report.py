#!/usr/bin/env python3
"""Turn the output of tools/bench/run.sh into RESULTS.md and a plot.

    report.py RUN_OUTPUT --md RESULTS.md --plot results.svg --command "..."

RUN_OUTPUT holds the benchmarks' lines, as they print them:
    SCENARIO  reseau=<n><unit>  PEER=<n><unit>  ratio=<r>  [extra]
    SCENARIO  reseau=<n><unit>  (no peer; ...)
and '#' comment lines (the programs' headers, run.sh's machine lines), which
go into the page as they are. The table gives each scenario its goal (GOALS
below, from the issues that set them) and whether this run met it. The plot
has a bar per scenario: the ratio turned so that above 1 is better for reseau
(peer / reseau for figures where lower is better, such as memory), or, for a
scenario with an absolute goal and no peer, goal / reseau; and a line at 1.0.
The plot needs matplotlib (Debian: python3-matplotlib); the table does not.
"""
import argparse
import re
import sys

# The unit follows the number with or without a space ("1393.3 MB/s", "2.4KB", "38031/s").
LINE = re.compile(
    r"^(?P<name>\S+)\s+reseau=\s*(?P<r>[0-9.]+) ?(?P<unit>[A-Za-z/]*)\s+"
    r"(?:(?P<peer>[\w-]+)=\s*(?P<p>[0-9.]+) ?[A-Za-z/]*\s+ratio=(?P<ratio>[0-9.]+)|\(no peer[^)]*\))(?P<rest>.*)$"
)
P99 = re.compile(r"p99 reseau=(?P<r>[0-9.]+)ms \w+=(?P<p>[0-9.]+)ms")
CPU = re.compile(r"cpu/req reseau=(?P<r>[0-9.]+)us \w+=(?P<p>[0-9.]+)us")

# Lower is better for these (memory, size): the ratio must stay low.
LOWER_IS_BETTER = re.compile(r"^(idle_|tls_idle_|code_size)")


def goal_for(name):
    """(text, check(row) -> bool) for a scenario, or None where no issue set a goal."""
    if name.startswith("wrk_"):
        return ("ratio >= 1.10 at p99 <= libuv's (issue 15)",
                lambda row: row["ratio"] >= 1.10 and row["p99"] is not None and row["p99"][0] <= row["p99"][1])
    if name in ("idle_rss", "idle_heap"):
        return ("<= libuv (ratio <= 1.00, issue 15)", lambda row: row["ratio"] <= 1.0)
    if name in ("tls_idle_rss", "tls_idle_heap", "tls_idle_memory"):
        return ("<= 40 KB (issues 9, 15)", lambda row: row["r"] <= 40.0)
    if name == "code_size":
        return ("< 64 KB (issue 15)", lambda row: row["r"] < 64.0)
    if name == "trace_off":
        return ("within noise of RESEAU_NO_TRACE (ratio >= 0.97, issue 17)", lambda row: row["ratio"] >= 0.97)
    if name in ("trace_noop", "trace_noop_io", "trace_noop_mt"):
        return ("no-op tracer within noise of none (ratio >= 0.97, issue 17)", lambda row: row["ratio"] >= 0.97)
    if name == "pound_bootstrap":
        return (">= 1.00 (issue 8)", lambda row: row["ratio"] >= 1.0)
    if name == "tls_pump":
        return (">= 0.75 (issue 9)", lambda row: row["ratio"] >= 0.75)
    if name == "ping_pongs_100_io_uring":
        return (">= 1.30 (issue 12)", lambda row: row["ratio"] >= 1.3)
    # Issue 12's scenarios; pipe ends stay readiness-based on io_uring.
    if name.endswith("_io_uring") and not name.startswith("pipe_"):
        return (">= 1.10 (issue 12)", lambda row: row["ratio"] >= 1.1)
    return None


def parse(path):
    rows, notes = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("#"):
                notes.append(line[1:].strip())
                continue
            m = LINE.match(line)
            if not m:
                continue
            p99 = P99.search(m.group("rest") or "")
            cpu = CPU.search(m.group("rest") or "")
            rows.append({
                "name": m.group("name"),
                "r": float(m.group("r")),
                "unit": m.group("unit"),
                "peer": m.group("peer"),
                "p": float(m.group("p")) if m.group("p") else None,
                "ratio": float(m.group("ratio")) if m.group("ratio") else None,
                "p99": (float(p99.group("r")), float(p99.group("p"))) if p99 else None,
                "cpu": (float(cpu.group("r")), float(cpu.group("p"))) if cpu else None,
            })
    return rows, notes


def fmt(value, unit):
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:,.1f} {unit}" if unit else f"{value:,.1f}"


def write_markdown(path, rows, notes, command):
    out = [
        "# Benchmark results",
        "",
        "Written by `tools/bench/run.sh --report`; do not edit by hand. Each scenario runs reseau",
        "and its peer in the same run, alternating, and reports the median of each side. The",
        "ratio is reseau / peer: above 1 is better for rates, below 1 is better for memory and",
        "size. The plot is [results.svg](results.svg).",
        "",
        f"Command: `{command}`",
        "",
        "| scenario | reseau | peer | ratio | goal | met? |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        peer = f"{row['peer']} {fmt(row['p'], row['unit'])}" if row["peer"] else "none"
        ratio = f"{row['ratio']:.2f}" if row["ratio"] is not None else "—"
        reseau = fmt(row["r"], row["unit"])
        if row["p99"]:
            reseau += f", p99 {row['p99'][0]:.2f} ms"
            peer += f", p99 {row['p99'][1]:.2f} ms"
        if row["cpu"]:
            reseau += f", {row['cpu'][0]:.1f} us CPU/req"
            peer += f", {row['cpu'][1]:.1f} us CPU/req"
        goal = goal_for(row["name"])
        met = ("yes" if goal[1](row) else "**no**") if goal else "—"
        out.append(f"| {row['name']} | {reseau} | {peer} | {ratio} | {goal[0] if goal else '—'} | {met} |")
    out += ["", "## The run", "", "Lines the programs and run.sh printed about the machine and the run:", "", "```"]
    out += notes
    out += ["```", ""]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out))


def advantage(row):
    """Above 1: better for reseau. None when there is nothing to compare with."""
    if row["ratio"] is not None and row["ratio"] > 0:
        return 1.0 / row["ratio"] if LOWER_IS_BETTER.match(row["name"]) else row["ratio"]
    limit = {"tls_idle_rss": 40.0, "tls_idle_heap": 40.0, "code_size": 64.0}.get(row["name"])
    if limit and row["r"] > 0:
        return limit / row["r"]
    return None


def write_plot(path, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    shown = [(row, advantage(row)) for row in rows if advantage(row) is not None]
    names = [row["name"] + ("\n(vs goal)" if row["peer"] is None else f"\n(vs {row['peer']})") for row, _ in shown]
    values = [value for _, value in shown]
    colors = ["#4c72b0" if row["peer"] else "#999999" for row, _ in shown]
    fig, ax = plt.subplots(figsize=(max(8.0, 0.55 * len(shown) + 2), 5.0))
    # Bars grow from the 1.0 line, up where reseau is ahead and down where it is behind.
    bars = ax.bar(range(len(shown)), [value - 1.0 for value in values], bottom=1.0, color=colors)
    ax.axhline(1.0, color="#c44e52", linewidth=1.2)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    low, high = min(values + [1.0]) / 1.3, max(values + [1.0]) * 1.3
    ax.set_ylim(low, high)
    ax.set_yticks([t for t in (0.1, 0.25, 0.5, 1, 2, 4, 8, 16) if low <= t <= high])
    ax.set_xticks(range(len(shown)))
    ax.set_xticklabels(names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("reseau's advantage (x, log scale; above 1 is better)")
    ax.set_title("reseau against its peers (rates: reseau/peer; memory, size: peer/reseau)", fontsize=10)
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:.2f}", (bar.get_x() + bar.get_width() / 2, value), ha="center",
                    va="bottom" if value >= 1 else "top", fontsize=6)
    fig.tight_layout()
    # No date or creator (matplotlib's version), and fixed element ids: the
    # file changes only when a figure does.
    plt.rcParams["svg.hashsalt"] = "reseau"
    fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_output")
    parser.add_argument("--md", required=True)
    parser.add_argument("--plot", required=True)
    parser.add_argument("--command", default="tools/bench/run.sh --report")
    args = parser.parse_args()
    rows, notes = parse(args.run_output)
    if not rows:
        sys.exit("report.py: no benchmark lines in " + args.run_output)
    write_markdown(args.md, rows, notes, args.command)
    try:
        write_plot(args.plot, rows)
    except ImportError:
        sys.exit("report.py: the plot needs matplotlib (apt-get install python3-matplotlib); "
                 f"{args.md} is written")


if __name__ == "__main__":
    main()
