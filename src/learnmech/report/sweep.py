"""A sweep's page: what was varied, how the trials ended, and the sweep's figures
(metric against learning rate per value of the other fields; a heatmap for 2-D sweeps)."""

from __future__ import annotations

import base64
import datetime as dt
import io
import math
from pathlib import Path
from typing import Any

import jinja2
import yaml

from learnmech.report.figures import data_uri, plt
from learnmech.store import Store
from learnmech.sweep import Heatmap, Sweep, aggregate, summary, sweep_figures

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
 body { font: 14px/1.45 system-ui, sans-serif; max-width: 1100px; margin: 2em auto;
        padding: 0 1em; color: #222; }
 table { border-collapse: collapse; margin: .6em 0; font-size: 13px; }
 th, td { border-bottom: 1px solid #e4e4e4; padding: 3px 8px; text-align: left; }
 th { background: #f6f6f6; } .meta { color: #666; font-size: 12px; }
 .figs img { max-width: 49%; } pre { background: #f6f6f6; padding: .6em; font-size: 12px; }
</style></head><body>
<h1>{{ title }}</h1>
<p class="meta">Generated {{ generated }}. {{ counts }}</p>
<h2>Sweep</h2><pre>{{ spec }}</pre>
<h2>Figures</h2>
<div class="figs">{% for uri in figures %}<img alt="figure" src="{{ uri }}">{% endfor %}</div>
<h2>Trials (mean over seeds of {{ metric }})</h2>
<table><tr>{% for c in columns %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in rows %}<tr>{% for v in row %}<td>{{ v }}</td>{% endfor %}</tr>{% endfor %}
</table></body></html>
"""


def heatmap_png(heatmap: Heatmap, dpi: int = 110) -> bytes:
    """PNG bytes of a heatmap: ``log10`` of the values when they are all positive."""
    import numpy as np

    values = np.asarray(heatmap.values, dtype=float)
    finite = values[np.isfinite(values)]
    use_log = finite.size > 0 and bool((finite > 0).all())
    shown = np.log10(values) if use_log else values
    fig, ax = plt.subplots(figsize=(5.6, 3.9), dpi=dpi)
    image = ax.imshow(shown, origin="lower", aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(heatmap.x)), [_tick(v) for v in heatmap.x], fontsize=7,
                  rotation=45)
    ax.set_yticks(range(len(heatmap.y)), [_tick(v) for v in heatmap.y], fontsize=7)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if not math.isfinite(values[i, j]):
                ax.text(j, i, "×", ha="center", va="center", color="0.4", fontsize=9)
    ax.set_xlabel(heatmap.xlabel)
    ax.set_ylabel(heatmap.ylabel)
    ax.set_title(heatmap.title + (" (log₁₀)" if use_log else "") + "; × = none completed",
                 fontsize=9)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def _tick(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def render_sweep(sweep: Sweep, store: Store, metric: str = "final_train_loss") -> str:
    """The HTML text of the sweep's page."""
    from dataclasses import asdict

    table = summary(sweep, store)
    agg = aggregate(sweep, table, metric)
    figures, heatmaps = sweep_figures(sweep, store, metric)
    uris = [data_uri(asdict(f)) for f in figures]
    uris += ["data:image/png;base64," + base64.b64encode(heatmap_png(h)).decode()
             for h in heatmaps]
    status = table["status"].value_counts().to_dict() if len(table) else {}
    counts = f"{len(table)} trials: " + ", ".join(f"{n} {s}" for s, n in sorted(status.items()))
    spec = yaml.safe_dump(sweep.model_dump(mode="json", by_alias=True, exclude={"base"}),
                          sort_keys=False)
    spec = f"base run id {sweep.base.run_id}\n" + spec
    rows = [[_tick(v) if not isinstance(v, list) else str(v) for v in r]
            for r in agg.itertuples(index=False)]
    env = jinja2.Environment(autoescape=True)
    return env.from_string(_TEMPLATE).render(
        title="learnmech sweep", generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        counts=counts, spec=spec, figures=uris, metric=metric, columns=list(agg.columns),
        rows=rows,
    )


def write_sweep_report(sweep: Sweep, store: Store, path: str | Path,
                       metric: str = "final_train_loss") -> Path:
    """Write the sweep's page to ``path`` and return the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_sweep(sweep, store, metric))
    return out
