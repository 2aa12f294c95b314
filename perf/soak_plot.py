#!/usr/bin/env python3
"""perf/soak_plot.py CSV PNG: plot a perf/soak.sh run (RSS, descriptors and
threads against time, broker restarts marked) and print summary lines: first,
last, min and max of each series after the first minute (warm-up), and the
linear trend of RSS over that span (KiB per 10 minutes)."""
import csv
import sys


def main(csv_path, png_path):
    rows = list(csv.DictReader(open(csv_path)))
    t = [int(r["t_s"]) for r in rows]
    series = {
        "RSS (MiB)": [int(r["rss_kib"]) / 1024 for r in rows],
        "open descriptors": [int(r["fds"]) for r in rows],
        "threads": [int(r["threads"]) for r in rows],
    }
    events = [(int(r["t_s"]), r["event"]) for r in rows if r["event"]]
    steady = [i for i, x in enumerate(t) if x >= 60] or list(range(len(t)))
    for name, ys in series.items():
        ss = [ys[i] for i in steady]
        print(f"{name} after the first minute: first {ss[0]:.1f}, last {ss[-1]:.1f}, "
              f"min {min(ss):.1f}, max {max(ss):.1f}")
    xs = [t[i] for i in steady]
    ys = [series["RSS (MiB)"][i] for i in steady]
    if len(xs) > 2:
        mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
        var = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var if var else 0.0
        print(f"RSS trend after the first minute (least squares): {slope * 600 * 1024:+.0f} KiB per 10 minutes")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    for ax, (name, ys) in zip(axes, series.items()):
        ax.plot([x / 60 for x in t], ys, linewidth=1)
        ax.set_ylabel(name)
        ax.set_ylim(bottom=0, top=max(ys) * 1.25 + 1)
        for x, label in events:
            if label.startswith("kill"):
                ax.axvline(x / 60, color="red", linewidth=0.6, alpha=0.6)
        ax.grid(alpha=0.3)
    axes[0].set_title("kp soak: kp-perf at a fixed rate, one broker SIGKILLed and restarted "
                      "at each red line")
    axes[-1].set_xlabel("minutes")
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
