"""The one-file HTML report of `rdia report`. Never prints.

The page is self-contained: CSS inline, figures as ``data:image/png;base64`` URIs, no script, no
link to anything outside the file. Every number in it that comes from a file also sits in a
``data-value`` attribute at full precision (``data-key`` names it), so it can be checked.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from rdia_cli.artifacts.atomic import atomic_path
from rdia_cli.report.figures import (
    before_after_png,
    cv_decision_png,
    fmt_num,
    phi_histogram_png,
    sweep_png,
)
from rdia_cli.report.run import RUN_FILES, RunReport

# --------------------------------------------------------------------------------------------
# report: HTML
# --------------------------------------------------------------------------------------------
CSS = """
:root{--ink:#1f2933;--dim:#616e7c;--line:#d9e2ec;--bg:#f5f7fa;--good:#1e7b34;--bad:#b42318}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.45 -apple-system,
 BlinkMacSystemFont,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1040px;margin:0 auto;padding:24px 28px 48px;background:#fff;min-height:100vh}
h1{font-size:24px;margin:0 0 4px}
h3{font-size:14px;margin:12px 0 4px}
h2{font-size:17px;margin:30px 0 8px;padding-bottom:4px;border-bottom:2px solid var(--line)}
p{margin:6px 0}
.sub,.note,figcaption{color:var(--dim)}
.note{font-size:13px}
code{font:12.5px ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--bg);
 padding:1px 4px;border-radius:3px}
nav{margin:10px 0 4px;font-size:13px}
nav a{color:#2c6fbb;text-decoration:none;margin-right:14px}
table{border-collapse:collapse;margin:8px 0 4px;font-size:13px}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{background:var(--bg);font-weight:600;white-space:nowrap}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.hl td{background:#fff7e0}
td.best{color:var(--good);font-weight:700}
td.worse{color:var(--bad)}
td.zero{color:#bcccdc}
table.kv td:first-child{color:var(--dim);white-space:nowrap}
figure{margin:10px 0}
figure img{max-width:100%;height:auto;border:1px solid var(--line)}
.cards{display:flex;gap:12px;flex-wrap:wrap;margin:8px 0}
.card{border:1px solid var(--line);border-radius:6px;padding:8px 14px;min-width:150px}
.card b{display:block;font-size:20px;font-variant-numeric:tabular-nums}
.card span{color:var(--dim);font-size:12px}
.cols{display:flex;gap:36px;flex-wrap:wrap;align-items:flex-start}
"""


def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _attrs(data: dict[str, Any]) -> str:
    return "".join(f' data-{k}="{_e(v)}"' for k, v in data.items())


_NO_VALUE = object()


def _td(text: Any, *, value: Any = _NO_VALUE, cls: str = "", **data: Any) -> str:
    """A cell; ``value`` (full precision, repr; None as `None`) goes in data-value."""
    attrs = _attrs(data)
    if value is not _NO_VALUE:
        attrs += f' data-value="{_e(repr(value) if isinstance(value, float) else value)}"'
    c = f' class="{cls}"' if cls else ""
    return f"<td{c}{attrs}>{_e(text)}</td>"


def _th(*names: str, numeric: tuple[str, ...] = ()) -> str:
    return "<tr>" + "".join(
        f'<th class="n">{_e(n)}</th>' if n in numeric else f"<th>{_e(n)}</th>" for n in names
    ) + "</tr>"


def _img(png: bytes, alt: str) -> str:
    b64 = base64.b64encode(png).decode("ascii")
    return f'<figure><img src="data:image/png;base64,{b64}" alt="{_e(alt)}"></figure>'


def _kv_table(rows: list[tuple[str, Any]], section: str, *, none: str = "—") -> str:
    body = "".join(f"<tr><td>{_e(k)}</td>{_td(none if v is None else fmt_num(v), value=v if _plain(v) or v is None else _NO_VALUE, section=section, key=k)}</tr>"  # noqa: E501
                   for k, v in rows)
    return f'<table class="kv">{body}</table>'


def _plain(v: Any) -> bool:
    return isinstance(v, int | float | str) and not isinstance(v, bool)


def render_html(rep: RunReport, *, figures: bool = True) -> str:
    """The report as one self-contained HTML page (``figures=False`` leaves the plots out)."""
    run = rep.run
    title = f"rdia report: {rep.run_dir}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
        "<h1>rdia report</h1>",
        f'<p class="sub">run folder <code>{_e(rep.run_dir)}</code> · training data '
        f"<code>{_e(run.get('train'))}</code> ({fmt_num(run.get('n_train'))} rows) · strategy "
        f"<b>{_e(rep.strategy)}</b> · test data <code>{_e(run.get('test'))}</code> "
        f"({fmt_num(run.get('n_test'))} rows)</p>",
        "<nav>" + "".join(f'<a href="#{i}">{t}</a>' for i, t in _nav(rep)) + "</nav>",
    ]
    parts += _metrics_section(rep, figures)
    parts += _decision_section(rep, figures)
    parts += _phi_section(rep, figures)
    parts += _sweep_section(rep, figures)
    parts += _examples_section(rep)
    parts += _matrix_section(rep)
    parts += _noise_section(rep)
    parts += _settings_section(rep)
    parts.append('<p class="note">Φ &gt; 0 means a training row is harmful: removing it lowers '
                 "the validation loss by about Φ/N, relabeling it (paper Eq. 12) by about "
                 "Φ/(N(1 − p<sub>label</sub>)). Made by <code>rdia report</code> from "
                 f"{_e(', '.join(RUN_FILES))} and the cleaned files; nothing in this page is "
                 "loaded from elsewhere.</p>")
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def _nav(rep: RunReport) -> list[tuple[str, str]]:
    """(section id, title) of the sections this report has."""
    out = [("metrics", "before / after")]
    if rep.cv:
        out.append(("decision", "auto's decision"))
    out.append(("phi", "Φ"))
    if rep.sweep:
        out.append(("sweep", "α sweep"))
    if rep.examples or rep.examples_note:
        out.append(("why", "why these rows"))
    return out + [("relabels", "relabels"), ("noise", "label noise"), ("settings", "settings")]


def _metrics_section(rep: RunReport, figures: bool = True) -> list[str]:
    models = rep.metrics["models"]
    strategies = rep.run.get("strategies", {})
    erm = next((m for m in models if m.get("name") == "erm"), models[0] if models else None)
    best = min((m["loss"] for m in models), default=None)
    head = _th("model", "α", "relabeled", "removed", "test loss", "Δ vs erm", "accuracy", "AUC",
               "val loss", numeric=("α", "relabeled", "removed", "test loss", "Δ vs erm",
                                    "accuracy", "AUC", "val loss"))
    rows = []
    for m in models:
        name = m.get("name", Path(m["model"]).stem)
        s = strategies.get(name, {})
        delta = m["loss"] - erm["loss"] if erm is not None else None
        cls = ' class="hl"' if name == rep.strategy else ""
        cells = [
            f"<td><b>{_e(name)}</b> <code>{_e(Path(m['model']).name)}</code></td>",
            _td(fmt_num(s.get("alpha")), cls="n", value=s.get("alpha"), model=name, key="alpha"),
            _td(fmt_num(s.get("n_relabeled")), cls="n", value=s.get("n_relabeled"), model=name,
                key="n_relabeled"),
            _td(fmt_num(s.get("n_removed")), cls="n", value=s.get("n_removed"), model=name,
                key="n_removed"),
            _td(f"{m['loss']:.4f}", cls="n best" if m["loss"] == best and len(models) > 1
                else "n", value=m["loss"], model=name, key="loss"),
            _td("—" if delta is None or name == "erm" else f"{delta:+.4f}",
                cls="n" if delta is None or delta <= 0 else "n worse", model=name, key="delta"),
            _td(f"{m['accuracy']:.4f}", cls="n", value=m["accuracy"], model=name,
                key="accuracy"),
            _td(fmt_num(m.get("auc"), ".4f"), cls="n", value=m.get("auc"), model=name, key="auc"),
            _td(fmt_num(m.get("val_loss"), ".4f"), cls="n", value=m.get("val_loss"), model=name,
                key="val_loss"),
        ]
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    data = rep.metrics.get("data", rep.run.get("test"))
    return [
        '<section id="metrics"><h2>Before / after</h2>',
        f'<p class="note">Every model of the run on the test data <code>{_e(data)}</code>; '
        "val loss on the clean validation data (which also chose α, so it is optimistic). Best "
        "test loss in green; the run's strategy highlighted.</p>",
        f'<table id="metrics-table">{head}{"".join(rows)}</table>',
        *([_img(before_after_png(models, highlight=rep.strategy),
                "test loss and accuracy of every model, before (erm) and after cleaning")]
          if figures and models else []),
        "</section>",
    ]


def _decision_section(rep: RunReport, figures: bool) -> list[str]:
    """`auto`'s choice: every candidate's CV loss ± SE, the reference lines, the pick."""
    if not rep.cv or rep.verdict is None:
        return []
    v = rep.verdict
    out = ['<section id="decision"><h2>How auto decided</h2>',
           '<p class="note">Each candidate was fitted on the training rows it keeps (cleaned as '
           f"its label says) plus part of the clean set, and scored by {fmt_num(v.get('n_folds'))}"
           "-fold cross-validation on the clean set (out-of-fold loss, ± one standard error over "
           "its rows). Lines: candidate families over the share of training rows they act on; "
           "horizontal lines: the training set as given (ERM), the clean set alone, training + "
           "clean set; star: the pick.</p>"]
    if figures:
        out.append(_img(cv_decision_png(rep.cv, v, chosen_fraction=rep.chosen_fraction),
                        "cross-validated loss of every auto candidate with its standard error"))
    rows = [("chosen", v.get("chosen")), ("cv loss of the pick", v.get("cv_loss_chosen")),
            ("cv loss of ERM", v.get("cv_loss_erm")),
            ("cv loss of the clean set alone", v.get("cv_loss_clean_only")),
            ("cv loss of training + clean set", v.get("cv_loss_train_plus_val")),
            ("folds", v.get("n_folds")), ("clean rows", v.get("n_clean"))]
    noise = v.get("noise")
    if isinstance(noise, dict) and "noisy" in noise:
        rows.append(("label noise detected", str(bool(noise["noisy"]))))
    out.append(f'<div id="verdict">{_kv_table(rows, "verdict")}</div>')
    head = _th("candidate", "cv loss", "± SE", "all folds", numeric=("cv loss", "± SE"))
    body = []
    for i, r in enumerate(rep.cv):
        hl = ' class="hl"' if r.get("label") == v.get("chosen") else ""
        body.append(
            f"<tr{hl}><td>{_e(r.get('label'))}</td>"
            + _td(fmt_num(r.get("cv_loss"), ".4f"), cls="n", value=r.get("cv_loss"), cv=i,
                  key="cv_loss")
            + _td(fmt_num(r.get("cv_se"), ".4f"), cls="n", value=r.get("cv_se"), cv=i,
                  key="cv_se")
            + f"<td>{'yes' if r.get('all_folds') else 'no (raced out)'}</td></tr>")
    out.append(f"<details><summary>all {len(rep.cv)} candidates</summary>"
               f'<table id="cv-table">{head}{"".join(body)}</table></details></section>')
    return out


def _phi_section(rep: RunReport, figures: bool) -> list[str]:
    phi = rep.phi
    n = len(phi)
    alpha = rep.alpha
    cut = 0.0 if alpha is None else alpha
    above = phi > cut
    cards = [
        ("rows scored", n, "n_scored"),
        ("Φ > 0 (harmful)", int((phi > 0).sum()), "n_positive"),
        (f"Φ > α ({fmt_num(alpha)})", int(above.sum()), "n_above_alpha"),
        ("largest Φ", float(phi.max()) if n else None, "phi_max"),
    ]
    if alpha is None:  # --fraction runs record no α
        del cards[2]
    html_cards = "".join(
        f'<div class="card"><b data-key="{k}" data-value="{_e(repr(v) if isinstance(v, float) else v)}">'  # noqa: E501
        f"{_e(fmt_num(v))}</b><span>{_e(label)}</span></div>" for label, v, k in cards
    )
    out = ['<section id="phi"><h2>Influence Φ of the training rows</h2>',
           f'<div class="cards">{html_cards}</div>']
    if figures:
        out.append(_img(phi_histogram_png(phi, alpha=alpha, title=f"Φ of {n:,} training rows"),
                        "histogram of Φ with the threshold α"))
    red = ("rows above the chosen α (the ones the strategy acts on)" if alpha is not None
           else "Φ > 0 (the run chose rows by --fraction, not by α)")
    out.append(f'<p class="note">Red: {_e(red)}. Counts on a log scale.</p></section>')
    return out


def _sweep_section(rep: RunReport, figures: bool) -> list[str]:
    if not rep.sweep:  # α fixed, --fraction, or auto alone: no section
        return []
    out = ['<section id="sweep"><h2>α sweep</h2>']
    out.append(f'<p class="note">Candidate thresholds for <b>{_e(rep.sweep_strategy)}</b>: the '
               "model was retrained on each cleaned set and its validation loss measured; the "
               "lowest wins (highlighted). The prediction is the first-order change from Φ.</p>")
    if figures:
        out.append(_img(sweep_png(rep.sweep, chosen_alpha=rep.sweep_alpha,
                                  strategy=rep.sweep_strategy),
                        "validation loss against the number of rows selected"))
    head = _th("α", "selected", "relabeled", "removed", "predicted val loss",
               "val loss after retrain",
               numeric=("α", "selected", "relabeled", "removed", "predicted val loss",
                        "val loss after retrain"))
    rows = []
    for i, r in enumerate(rep.sweep):
        cls = ' class="hl"' if r.get("alpha") == rep.sweep_alpha else ""
        a = r.get("alpha")
        cells = [
            _td("none (erm)" if a is None else f"{a:.4g}", cls="n", value=a, sweep=i,
                key="alpha"),
            *[_td(fmt_num(r.get(k)), cls="n", value=r.get(k), sweep=i, key=k)
              for k in ("n_selected", "n_relabeled", "n_removed")],
            *[_td(fmt_num(r.get(k), ".4f"), cls="n", value=r.get(k), sweep=i, key=k)
              for k in ("predicted_val_loss", "val_loss")],
        ]
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append(f'<table id="sweep-table">{head}{"".join(rows)}</table></section>')
    return out


def _examples_section(rep: RunReport) -> list[str]:
    """A few of the most harmful rows explained in plain words (``run.worked_examples``)."""
    if not rep.examples and not rep.examples_note:
        return []
    out = ['<section id="why"><h2>Why these rows</h2>']
    if not rep.examples:
        out.append(f'<p class="note">{_e(rep.examples_note)}</p></section>')
        return out
    out.append(f'<p class="note">The {len(rep.examples)} training rows with the largest Φ. '
               "Φ splits exactly over the clean validation rows (for networks up to the "
               "solver's tolerance); the rows named are the ones whose loss training on this "
               "row raises most, with their share of Φ.</p><ol>")
    for ex in rep.examples:
        why = ex["why"]
        names = ", ".join(f"{w['row']} (labeled “{w['label']}”)" for w in why)
        shares = ", ".join(f"{w['share']:.0%}" for w in why)
        text = (f"The model gives its label “{_e(ex['given'])}” a {ex['p_label']:.1%} chance. "
                f"Φ = {ex['phi']:.3g} {'&gt;' if ex['phi'] > 0 else '≤'} 0, so the row "
                f"{'hurts' if ex['phi'] > 0 else 'does not hurt'} the clean set's loss. "
                f"Relabeling it to “{_e(ex['suggested'])}” (paper Eq. 12's most likely "
                f"class) should change the mean validation loss by about "
                f"{ex['delta_val_loss']:+.3g} (−Φ/(N(1 − p)), N = {ex['n_train']:,}). "
                f"The clean rows {_e(names)} account for {shares} of its Φ.")
        out.append(f'<li data-row="{_e(ex["row"])}"><b>Row {_e(ex["row"])}</b>: '
                   f"given “{_e(ex['given'])}” → suggested “{_e(ex['suggested'])}”. "
                   f"{text}</li>")
    out.append("</ol></section>")
    return out


def _matrix_section(rep: RunReport) -> list[str]:
    m = rep.matrix
    out = ['<section id="relabels"><h2>Relabels: from → to</h2>']
    total = int(m.sum())
    if total == 0:
        out.append(f'<p class="note">The strategy <b>{_e(rep.strategy)}</b> relabeled no rows.'
                   "</p></section>")
        return out
    out.append(f'<p class="note">{total:,} rows relabeled by <b>{_e(rep.strategy)}</b>: '
               "original label (rows) against the new target's top class (columns), from the "
               "cleaned file.</p>")
    head = "<tr><th>label ↓ · new →</th>" + "".join(
        f'<th class="n">{_e(c)}</th>' for c in rep.classes) + '<th class="n">total</th></tr>'
    rows = []
    for i, c in enumerate(rep.classes):
        cells = "".join(
            _td(fmt_num(int(m[i, j])), cls="n" if m[i, j] else "n zero", value=int(m[i, j]),
                key="matrix", **{"from": c, "to": rep.classes[j]})
            for j in range(len(rep.classes)))
        rows.append(f"<tr><th>{_e(c)}</th>{cells}"
                    f'{_td(fmt_num(int(m[i].sum())), cls="n")}</tr>')
    out.append(f'<table id="relabel-matrix">{head}{"".join(rows)}</table></section>')
    return out


def _noise_section(rep: RunReport) -> list[str]:
    out = ['<section id="noise"><h2>Label noise: flagged vs corrupted rows</h2>']
    if rep.noise_note:
        out.append(f'<p class="note">{_e(rep.noise_note)}</p></section>')
        return out
    if not rep.noise:
        out.append('<p class="note">The training data has no <code>is_noisy</code> column (it '
                   "is written by <code>rdia noise</code>), so the true corrupted rows are "
                   "unknown.</p></section>")
        return out
    nm = rep.noise_meta or {}
    desc = ", ".join(f"{k} {v}" for k, v in nm.items())
    out.append(f'<p class="note">Flagged = relabeled or removed rows; corrupted = '
               f"<code>is_noisy</code> in <code>{_e(rep.train_path)}</code>"
               f"{' (' + _e(desc) + ')' if desc else ''}. Precision: share of flagged rows that "
               "were corrupted; recall: share of corrupted rows that were flagged.</p>")
    head = _th("strategy", "flagged", "corrupted", "flagged ∩ corrupted", "precision", "recall",
               numeric=("flagged", "corrupted", "flagged ∩ corrupted", "precision", "recall"))
    rows = []
    for s in rep.noise:
        cls = ' class="hl"' if s.strategy == rep.strategy else ""
        cells = [
            f"<td><b>{_e(s.strategy)}</b></td>",
            _td(fmt_num(s.n_flagged), cls="n", value=s.n_flagged, strategy=s.strategy,
                key="n_flagged"),
            _td(fmt_num(s.n_noisy), cls="n", value=s.n_noisy, strategy=s.strategy, key="n_noisy"),
            _td(fmt_num(s.n_true_positive), cls="n", value=s.n_true_positive, strategy=s.strategy,
                key="n_true_positive"),
            _td("—" if s.precision is None else f"{s.precision:.3f}", cls="n", value=s.precision,
                strategy=s.strategy, key="precision"),
            _td("—" if s.recall is None else f"{s.recall:.3f}", cls="n", value=s.recall,
                strategy=s.strategy, key="recall"),
        ]
        rows.append(f"<tr{cls}>{''.join(cells)}</tr>")
    out.append(f'<table id="noise-table">{head}{"".join(rows)}</table>')
    if any(s.n_flagged == 0 for s in rep.noise):
        out.append('<p class="note">—: the strategy flags no row (optlr only reweights).</p>')
    out.append("</section>")
    return out


def _settings_section(rep: RunReport) -> list[str]:
    run = rep.run
    settings = dict(run.get("settings", {}))
    net = settings.pop("net_options", None)
    rows = [(k, v if _plain(v) or v is None else json.dumps(v)) for k, v in settings.items()]
    if net:
        rows.append(("net_options", json.dumps(net)))
    rows += [(k, run.get(k)) for k in ("train", "val", "test", "n_train", "n_val", "n_test")]
    score = [(k, v if _plain(v) or v is None else json.dumps(v))
             for k, v in (run.get("score_info") or {}).items()]
    timings = run.get("timings") or {}
    trows = "".join(
        f"<tr><td>{_e(k)}</td>{_td(f'{v:.2f} s', cls='n', value=float(v), key='timing', stage=k)}</tr>"  # noqa: E501
        for k, v in timings.items())
    total = sum(float(v) for v in timings.values())
    trows += f'<tr><th>sum</th><th class="n">{total:.2f} s</th></tr>'
    return [
        '<section id="settings"><h2>Settings and timings</h2><div class="cols">',
        f"<div><h3>run</h3>{_kv_table(rows, 'settings', none='default')}</div>",
        f"<div><h3>influence solve</h3>{_kv_table(score, 'score_info')}</div>",
        f'<div><h3>timings</h3><table class="kv" id="timings">{trows}</table></div>',
        "</div></section>",
    ]


def write_text(text: str, path: str | Path) -> None:
    """Write UTF-8 text to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
