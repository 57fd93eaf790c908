"""Several training runs side by side: each --out folder's history.json in a panel.

    python examples/plot_runs.py runs/bnlenet runs/densenet --out runs.png

Each panel is the d2l board of one run (losses and accuracies against epochs, as each
run's own curves.png), titled with the folder's name and its last test accuracy.
"""
import argparse
import json
import math
import pathlib

from scratchnet.figures import save_figure, subplots
from scratchnet.viz import draw_history


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="--out folders of training runs")
    p.add_argument("--out", required=True, help="the PNG to write")
    args = p.parse_args(argv)
    histories = []
    for run in map(pathlib.Path, args.runs):
        if not (run / "history.json").is_file():
            p.error(f"argument runs: no history.json in {run}")
        histories.append((run.name, json.loads((run / "history.json").read_text())))
    cols = min(3, len(histories))
    rows = math.ceil(len(histories) / cols)
    fig, axes = subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, (name, history) in zip(axes.flat, histories):
        draw_history(ax, history, f"{name}: val acc {history[-1]['val_acc']:.3f}")
    for ax in list(axes.flat)[len(histories):]:
        ax.axis("off")
    fig.tight_layout()
    print(save_figure(fig, args.out))


if __name__ == "__main__":
    main()
