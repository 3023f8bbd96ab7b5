"use strict";
// mi-assert report: draws the figures from the JSON embedded in the page and runs the filters.
// No network, no libraries: every picture is SVG built here.
(function () {
  var DATA = JSON.parse(document.getElementById("mi-data").textContent);

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}[c];
    });
  }
  function fmt(v) {
    if (v === null || v === undefined || isNaN(v)) return "–";
    var a = Math.abs(v);
    if (v === 0) return "0";
    if (a >= 1 && a < 1e6 && Math.abs(v - Math.round(v)) < 1e-9) return String(Math.round(v));
    if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(2);
    return v.toFixed(3);
  }
  function lin(d0, d1, r0, r1) {
    var k = d1 === d0 ? 0 : (r1 - r0) / (d1 - d0);
    return function (v) { return r0 + (v - d0) * k; };
  }
  function finite(v) { return typeof v === "number" && isFinite(v); }
  function extent(values) {
    var lo = Infinity, hi = -Infinity;
    values.forEach(function (v) { if (finite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
    if (lo === Infinity) return [0, 1];
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    var pad = (hi - lo) * 0.05;
    return [lo - pad, hi + pad];
  }
  var VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  function viridis(t) {
    t = Math.max(0, Math.min(1, t || 0)) * (VIRIDIS.length - 1);
    var i = Math.min(VIRIDIS.length - 2, Math.floor(t)), f = t - i, a = VIRIDIS[i], b = VIRIDIS[i + 1];
    return "rgb(" + [0, 1, 2].map(function (k) { return Math.round(a[k] + (b[k] - a[k]) * f); }).join(",") + ")";
  }
  function diverging(t) {  // t in [-1, 1]: blue - white - red
    t = Math.max(-1, Math.min(1, t || 0));
    var c = t < 0 ? [33, 102, 172] : [178, 24, 43], f = Math.abs(t);
    return "rgb(" + [0, 1, 2].map(function (k) { return Math.round(255 + (c[k] - 255) * f); }).join(",") + ")";
  }
  function svgOpen(w, h) {
    return '<svg width="' + w + '" height="' + h +
      '" viewBox="0 0 ' + w + " " + h + '" font-family="sans-serif" font-size="10">';
  }
  function text(x, y, s, extra) {
    return '<text x="' + x + '" y="' + y + '"' + (extra || "") + ">" + esc(s) + "</text>";
  }
  function tip(s) { return ' data-tip="' + esc(s) + '"><title>' + esc(s) + "</title"; }
  function axes(w, h, m, xs, ys, xlabel, ylabel, xlim, ylim) {
    var out = '<line x1="' + m.l + '" y1="' + (h - m.b) + '" x2="' + (w - m.r) + '" y2="' + (h - m.b) + '" stroke="#888"/>' +
      '<line x1="' + m.l + '" y1="' + m.t + '" x2="' + m.l + '" y2="' + (h - m.b) + '" stroke="#888"/>';
    [0, 0.5, 1].forEach(function (f) {
      var yv = ylim[0] + (ylim[1] - ylim[0]) * f, xv = xlim[0] + (xlim[1] - xlim[0]) * f;
      out += text(m.l - 4, ys(yv) + 3, fmt(yv), ' text-anchor="end"');
      if (xs) out += text(xs(xv), h - m.b + 12, fmt(xv), ' text-anchor="middle"');
    });
    out += text((m.l + w - m.r) / 2, h - 2, xlabel || "", ' text-anchor="middle"');
    out += text(10, (m.t + h - m.b) / 2, ylabel || "", ' text-anchor="middle" transform="rotate(-90 10 ' + ((m.t + h - m.b) / 2) + ')"');
    return out;
  }
  function thresholdLine(vertical, pos, from, to) {
    return vertical
      ? '<line class="threshold" x1="' + pos + '" x2="' + pos + '" y1="' + from + '" y2="' + to + '" stroke="crimson" stroke-dasharray="4 3"/>'
      : '<line class="threshold" x1="' + from + '" x2="' + to + '" y1="' + pos + '" y2="' + pos + '" stroke="crimson" stroke-dasharray="4 3"/>';
  }

  var draw = {};

  draw.heatmap = function (f) {
    var rows = Array.isArray(f.data[0]) ? f.data : [f.data];
    var nr = rows.length, nc = rows[0].length;
    var cell = Math.max(4, Math.min(f.maxCell || 28, Math.floor(520 / Math.max(nc, 1))));
    var m = {l: 60, t: 8, r: 10, b: 34}, w = m.l + nc * cell + m.r, h = m.t + nr * cell + m.b;
    var vals = [].concat.apply([], rows), lo = Infinity, hi = -Infinity;
    vals.forEach(function (v) { if (finite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } });
    var signed = lo < 0 && hi > 0, lim = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    var xl = f.xticklabels || [], yl = f.yticklabels || [];
    var out = svgOpen(w, h);
    rows.forEach(function (row, i) {
      row.forEach(function (v, j) {
        var color = !finite(v) ? "#ddd" : signed ? diverging(v / lim) : viridis(hi === lo ? 0.5 : (v - lo) / (hi - lo));
        var label = (yl[i] !== undefined ? yl[i] : i) + " × " + (xl[j] !== undefined ? xl[j] : j) + ": " + fmt(v);
        out += '<rect x="' + (m.l + j * cell) + '" y="' + (m.t + i * cell) + '" width="' + cell + '" height="' + cell + '" fill="' + color + '"' + tip(label) + "></rect>";
      });
      if (cell >= 9) out += text(m.l - 4, m.t + i * cell + cell / 2 + 3, yl[i] !== undefined ? yl[i] : i, ' text-anchor="end"');
    });
    if (cell >= 9) xl.forEach(function (s, j) {
      out += text(m.l + j * cell + cell / 2, m.t + nr * cell + 11, s, ' text-anchor="middle"');
    });
    out += text((m.l + w - m.r) / 2, h - 4, f.xlabel || "", ' text-anchor="middle"');
    out += text(10, m.t + nr * cell / 2, f.ylabel || "", ' text-anchor="middle" transform="rotate(-90 10 ' + (m.t + nr * cell / 2) + ')"');
    return out + "</svg>";
  };

  draw.hist = function (f) {
    var w = 480, h = 220, m = {l: 44, t: 10, r: 24, b: 30};
    var edges = f.edges, nb = edges.length - 1, maxc = 1;
    f.counts.forEach(function (c) { c.forEach(function (v) { maxc = Math.max(maxc, v); }); });
    var xs = lin(edges[0], edges[nb], m.l, w - m.r), ys = lin(0, maxc, h - m.b, m.t);
    var palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf"];
    var out = svgOpen(w, h) + axes(w, h, m, xs, ys, f.xlabel, "count", [edges[0], edges[nb]], [0, maxc]);
    f.counts.forEach(function (c, r) {
      c.forEach(function (v, b) {
        if (!v) return;
        var x0 = xs(edges[b]), x1 = xs(edges[b + 1]);
        out += '<rect x="' + x0 + '" y="' + ys(v) + '" width="' + Math.max(1, x1 - x0 - 1) + '" height="' + (ys(0) - ys(v)) +
          '" fill="' + palette[r % palette.length] + '" fill-opacity="0.55"' +
          tip((f.labels[r] ? f.labels[r] + ": " : "") + "[" + fmt(edges[b]) + ", " + fmt(edges[b + 1]) + "): " + v) + "></rect>";
      });
    });
    if (finite(f.threshold)) out += thresholdLine(true, xs(f.threshold), m.t, h - m.b);
    var legend = f.labels.length > 1 ? f.labels.slice(0, 8).map(function (l, r) {
      return '<span style="color:' + palette[r % palette.length] + '">■</span> ' + esc(l);
    }).join(" · ") : "";
    return out + "</svg>" + (legend ? '<div class="cap">' + legend + "</div>" : "");
  };

  function seriesPlot(f, points, xlabels) {
    var w = 520, h = 240, m = {l: 50, t: 10, r: 24, b: 44};
    var xsv = points.map(function (p) { return p.x; });
    var xlim = extent(xsv), yv = [];
    points.forEach(function (p) { yv.push(p.y, p.low, p.high); });
    if (finite(f.threshold)) yv.push(f.threshold);
    var ylim = extent(yv), xs = lin(xlim[0], xlim[1], m.l, w - m.r), ys = lin(ylim[0], ylim[1], h - m.b, m.t);
    var out = svgOpen(w, h) + axes(w, h, m, xlabels ? null : xs, ys, f.xlabel, f.ylabel, xlim, ylim);
    var band = points.filter(function (p) { return finite(p.low) && finite(p.high); });
    if (band.length > 1) {
      out += '<polygon fill="#90caf9" fill-opacity="0.45" points="' +
        band.map(function (p) { return xs(p.x) + "," + ys(p.high); }).concat(
          band.slice().reverse().map(function (p) { return xs(p.x) + "," + ys(p.low); })).join(" ") + '"/>';
    }
    var line = points.filter(function (p) { return finite(p.y); });
    out += '<polyline fill="none" stroke="#1565c0" stroke-width="1.5" points="' +
      line.map(function (p) { return xs(p.x) + "," + ys(p.y); }).join(" ") + '"/>';
    if (finite(f.threshold)) out += thresholdLine(false, ys(f.threshold), m.l, w - m.r);
    line.forEach(function (p) {
      var color = p.passed === undefined ? "#1565c0" : p.passed ? "#2e7d32" : "#c62828";
      out += '<circle class="point" cx="' + xs(p.x) + '" cy="' + ys(p.y) + '" r="4" fill="' + color + '"' +
        tip((p.label !== undefined ? p.label + ": " : "x=" + fmt(p.x) + ": ") + fmt(p.y) +
            (finite(p.low) ? " [" + fmt(p.low) + ", " + fmt(p.high) + "]" : "") +
            (p.passed === undefined ? "" : p.passed ? " PASS" : " FAIL")) + "></circle>";
    });
    if (xlabels) points.forEach(function (p) {
      out += text(xs(p.x), h - m.b + 12, p.label, ' text-anchor="end" transform="rotate(-35 ' + xs(p.x) + " " + (h - m.b + 12) + ')"');
    });
    return out + "</svg>";
  }

  draw.line = function (f) {
    var d = f.data, thr = finite(f.threshold) ? f.threshold : d && d.threshold;
    if (d && !Array.isArray(d)) {
      var pts = d.y.map(function (y, i) {
        return {x: d.x ? d.x[i] : i, y: y, low: d.low ? d.low[i] : null, high: d.high ? d.high[i] : null,
                label: d.xticklabels ? d.xticklabels[i] : undefined};
      });
      return seriesPlot({threshold: thr, xlabel: f.xlabel, ylabel: f.ylabel}, pts, !!d.xticklabels);
    }
    var rows = Array.isArray(d[0]) ? d : [d];
    return rows.map(function (row) {
      return seriesPlot({threshold: thr, xlabel: f.xlabel, ylabel: f.ylabel},
        row.map(function (y, i) { return {x: i, y: y}; }), false);
    }).join("");
  };

  draw.trajectory = function (f) {
    var ordinal = f.xlabel !== "training step";
    var pts = f.points.map(function (p, i) {
      return {x: ordinal ? i : p.x, y: p.estimate, low: p.low, high: p.high, passed: p.passed, label: p.label};
    });
    return seriesPlot(f, pts, true);
  };

  draw.forest = function (f) {
    var rows = f.rows, rh = 16, w = 520, m = {l: 190, t: 8, r: 28, b: 30}, h = m.t + rows.length * rh + m.b;
    var vals = [];
    rows.forEach(function (r) { vals.push(r.low, r.high, r.estimate); });
    if (finite(f.threshold)) vals.push(f.threshold);
    var xlim = extent(vals), xs = lin(xlim[0], xlim[1], m.l, w - m.r);
    var out = svgOpen(w, h);
    rows.forEach(function (r, i) {
      var y = m.t + i * rh + rh / 2, color = r.passed ? "#2e7d32" : "#c62828";
      out += text(m.l - 6, y + 3, r.label, ' text-anchor="end"');
      if (finite(r.low) && finite(r.high))
        out += '<line x1="' + xs(r.low) + '" x2="' + xs(r.high) + '" y1="' + y + '" y2="' + y + '" stroke="' + color + '" stroke-width="2"/>';
      if (finite(r.estimate))
        out += '<circle class="point" cx="' + xs(r.estimate) + '" cy="' + y + '" r="4" fill="' + color + '"' +
          tip(r.label + ": " + fmt(r.estimate) + " [" + fmt(r.low) + ", " + fmt(r.high) + "] " + (r.passed ? "pass" : "FAIL")) + "></circle>";
    });
    var base = m.t + rows.length * rh;
    out += '<line x1="' + m.l + '" x2="' + (w - m.r) + '" y1="' + base + '" y2="' + base + '" stroke="#888"/>';
    [0, 0.5, 1].forEach(function (q) {
      var v = xlim[0] + (xlim[1] - xlim[0]) * q;
      out += text(xs(v), base + 12, fmt(v), ' text-anchor="middle"');
    });
    out += text((m.l + w - m.r) / 2, h - 3, f.xlabel, ' text-anchor="middle"');
    if (finite(f.threshold)) out += thresholdLine(true, xs(f.threshold), m.t, base);
    return out + "</svg>";
  };

  draw.error = function (f) { return '<div class="warn">cannot draw: ' + esc(f.error) + "</div>"; };

  // attention: hover a query token to see where the head attends (keys shaded by weight)
  function attention(el, f) {
    var which = 0;
    el.classList.add("attn");
    var heads = f.data.length > 1 ? '<div class="heads">' + f.data.map(function (_, i) {
      return '<button type="button" data-i="' + i + '"' + (i === 0 ? ' class="on"' : "") + ">" +
        esc(f.labels[i] || "example " + i) + "</button>";
    }).join("") + "</div>" : "";
    el.innerHTML = heads + '<div class="toks"></div><div class="readout"></div><div class="grid"></div>';
    var toksEl = el.querySelector(".toks"), readout = el.querySelector(".readout"), grid = el.querySelector(".grid");
    function tokens() {
      var t = f.tokens[which] || f.tokens[0];
      if (t && t.length) return t;
      return f.data[which].map(function (_, i) { return "#" + i; });
    }
    function render() {
      var t = tokens();
      toksEl.innerHTML = t.map(function (s, i) {
        return '<span class="tok" data-i="' + i + '" title="position ' + i + '">' + esc(s) + "</span>";
      }).join("");
      var short = t.length <= 40 ? t : undefined;
      grid.innerHTML = draw.heatmap({data: f.data[which], xlabel: f.xlabel || "key position",
        ylabel: f.ylabel || "query position", maxCell: 14, xticklabels: short, yticklabels: short});
      readout.textContent = "hover a token: where " + (f.labels[which] || "the head") + " attends from it";
    }
    function highlight(q) {
      var row = f.data[which][q] || [], t = tokens(), spans = toksEl.querySelectorAll(".tok");
      var order = row.map(function (v, k) { return [v, k]; }).sort(function (a, b) { return b[0] - a[0]; });
      spans.forEach(function (s, k) {
        var a = row[k] || 0;
        s.classList.toggle("query", k === q);
        s.classList.toggle("key-hl", k !== q && a >= 0.1);
        s.style.background = k === q ? "" : a > 0 ? "rgba(230,81,0," + Math.min(1, Math.sqrt(a)).toFixed(3) + ")" : "";
      });
      readout.textContent = "query " + q + " " + JSON.stringify(t[q]) + " attends: " + order.slice(0, 3).filter(function (p) {
        return p[0] > 0;
      }).map(function (p) { return p[1] + " " + JSON.stringify(t[p[1]]) + " " + p[0].toFixed(2); }).join(", ");
    }
    function clear() {
      toksEl.querySelectorAll(".tok").forEach(function (s) {
        s.classList.remove("query", "key-hl"); s.style.background = "";
      });
    }
    toksEl.addEventListener("mouseover", function (e) {
      var s = e.target.closest(".tok");
      if (s) highlight(+s.dataset.i);
    });
    toksEl.addEventListener("mouseleave", clear);
    el.addEventListener("click", function (e) {
      var b = e.target.closest("button[data-i]");
      if (!b) return;
      which = +b.dataset.i;
      el.querySelectorAll(".heads button").forEach(function (x) { x.classList.toggle("on", x === b); });
      render();
    });
    render();
  }

  // SAE feature dashboard (SAE-Vis / Neuronpedia layout): top-activating contexts with every
  // token shaded by the latent's activation (hover: its value), the activation histogram over
  // firing tokens, and the direct logit effect as boosted (blue) / suppressed (red) token tables
  function tokText(s) { return String(s).replace(/\n/g, "↵").replace(/\t/g, "⇥"); }
  function featureDashboard(el, f) {
    el.classList.add("fdash");
    var top = finite(f.max) && f.max > 0 ? f.max : 1;
    function shade(a) {
      if (!finite(a) || a === 0) return "";
      var t = Math.min(1, Math.abs(a) / top).toFixed(3);
      return a > 0 ? "background:rgba(230,81,0," + t + ")" : "background:rgba(21,101,192," + t + ")";
    }
    function context(c) {
      var toks = c.t.map(function (s, j) {
        var a = c.a[j], label = f.token_ids ? "token " + s : JSON.stringify(String(s));
        var pos = c.i - c.f + j;
        var tipText = label + " (prompt " + c.p + ", position " + pos + "): " +
          (a === null || a === undefined ? "BOS, not counted" : "activation " + fmt(a));
        return '<span class="tok' + (j === c.f ? " focus" : "") + (a === null ? " bos" : "") +
          '" data-act="' + (a === null ? "" : a) + '" style="' + shade(a) + '" data-tip="' + esc(tipText) +
          '" title="' + esc(tipText) + '">' + esc(f.token_ids ? s : tokText(s)) + "</span>";
      }).join(f.token_ids ? " " : "");
      return '<div class="ctx"><span class="ctx-v">' + fmt(c.v) + '</span><span class="toks">' + toks + "</span></div>";
    }
    function table(rows, title, sign) {
      var lim = 0;
      rows.forEach(function (r) { lim = Math.max(lim, Math.abs(r[1])); });
      return '<table class="logits ' + sign + '"><tr><th colspan="2">' + esc(title) + "</th></tr>" +
        rows.map(function (r) {
          var t = lim ? Math.min(1, Math.abs(r[1]) / lim) * 0.6 : 0;
          return '<tr><td class="tokcell">' + esc(f.token_ids ? "token " + r[0] : JSON.stringify(String(r[0]))) +
            '</td><td class="num" style="background:' + diverging(sign === "pos" ? -t : t) + '">' +
            (r[1] > 0 ? "+" : "") + fmt(r[1]) + "</td></tr>";
        }).join("") + "</table>";
    }
    var src = Object.keys(f.sources || {}).map(function (k) { return f.sources[k] + " " + k; }).join(", ");
    var head = '<div class="fd-head">latent <b>' + esc(f.feature) + "</b> at " + esc(f.hook) +
      " · firing density <b>" + (finite(f.density) ? (100 * f.density).toPrecision(3) + "%" : "–") +
      "</b> (" + esc(f.n_firing) + " of " + esc(f.n_tokens) + " non-BOS tokens with activation &gt; 0)" +
      " · max activation " + fmt(f.max) + " · " + esc(f.n_prompts) + " prompts" + (src ? " (" + esc(src) + ")" : "") + "</div>";
    var logits = f.boosted.length || f.suppressed.length
      ? '<div class="fd-tables">' + table(f.boosted, "top boosted tokens", "pos") +
        table(f.suppressed, "top suppressed tokens", "neg") + "</div>"
      : '<div class="meta">' + esc(f.logit_note || "no logit effect") + "</div>";
    var left = '<div class="fd-col fd-left"><h4>Activation histogram (firing tokens)</h4>' +
      '<div class="fd-hist">' + draw.hist(f.hist) + "</div>" +
      '<h4>Direct logit effect</h4><div class="meta fd-path">' + esc(f.logit_path) + "</div>" + logits + "</div>";
    var right = '<div class="fd-col fd-right"><h4>Top activations</h4>' +
      (f.contexts.length ? '<div class="fd-top">' + f.contexts.map(context).join("") + "</div>"
                         : '<div class="meta">the latent fires on no counted token of these prompts</div>') +
      f.groups.map(function (g) {
        return '<div class="fd-group"><h5>' + esc(g.label) + " (activation " + fmt(g.low) + "–" + fmt(g.high) + ")</h5>" +
          g.contexts.map(context).join("") + "</div>";
      }).join("") + "</div>";
    el.innerHTML = head + '<div class="fd-cols">' + left + right + "</div>";
  }

  function renderFigure(el) {
    var f = DATA.figs[el.dataset.fig];
    var body = el.querySelector(".body");
    try {
      if (!f) throw new Error("no data for figure " + el.dataset.fig);
      if (f.kind === "pattern") attention(body, f);
      else if (f.kind === "feature_dashboard") featureDashboard(body, f);
      else body.innerHTML = (draw[f.kind] || draw.error)(f.kind in draw ? f : {error: "unknown kind " + f.kind});
    } catch (err) {
      body.innerHTML = '<div class="warn">cannot draw: ' + esc(err.message) + "</div>";
    }
    var readout = el.querySelector(":scope > .readout");
    if (readout) body.addEventListener("mouseover", function (e) {
      var t = e.target.closest("[data-tip]");
      if (t) readout.textContent = t.getAttribute("data-tip");
    });
  }

  // circuits: SVG markup stored once per distinct circuit, placed on every card that shows it
  document.querySelectorAll(".circuit[data-svg]").forEach(function (el) {
    el.innerHTML = (DATA.svgs || {})[el.dataset.svg] || '<div class="warn">circuit drawing missing</div>';
  });

  // draw when a figure comes near the viewport: the page opens before every picture is built
  var figures = document.querySelectorAll(".fig[data-fig]");
  if ("IntersectionObserver" in window) {
    var io = new IntersectionObserver(function (entries) {
      entries.forEach(function (e) {
        if (e.isIntersecting) { io.unobserve(e.target); renderFigure(e.target); }
      });
    }, {rootMargin: "600px"});
    figures.forEach(function (el) { io.observe(el); });
  } else {
    figures.forEach(renderFigure);
  }
  window.miAssertDrawAll = function () {
    figures.forEach(function (el) { if (!el.querySelector(".body").childNodes.length) renderFigure(el); });
  };

  // filters: verdict, model, family, free text; rows, their group headers and cards follow
  var controls = {
    verdict: document.getElementById("filter-verdict"), model: document.getElementById("filter-model"),
    family: document.getElementById("filter-family"), text: document.getElementById("filter-text")
  };
  var rows = Array.prototype.slice.call(document.querySelectorAll("tr.claim-row"));
  var counter = document.getElementById("filter-count");
  function matches(el) {
    var v = controls.verdict.value, md = controls.model.value, fm = controls.family.value;
    var q = controls.text.value.trim().toLowerCase();
    var ev = el.dataset.verdict;
    if (v === "UNEXPECTED" ? ev !== "FAIL" : v === "FAIL" ? ev === "PASS" : v && ev !== v) return false;
    if (md && el.dataset.model !== md) return false;
    if (fm && el.dataset.family !== fm) return false;
    return !q || el.dataset.search.indexOf(q) >= 0;
  }
  function apply() {
    var shown = 0;
    rows.forEach(function (r) {
      var ok = matches(r);
      r.classList.toggle("hidden-by-filter", !ok);
      var card = document.getElementById("card-" + r.id);
      if (card) card.classList.toggle("hidden-by-filter", !ok);
      if (ok) shown++;
    });
    document.querySelectorAll("tr.group-row").forEach(function (g) {
      var any = rows.some(function (r) { return r.dataset.group === g.dataset.group && !r.classList.contains("hidden-by-filter"); });
      g.classList.toggle("hidden-by-filter", !any);
    });
    counter.textContent = shown + " of " + rows.length + " claims shown";
    // asking for expected failures (or searching) should show them, not leave them folded away
    var looking = controls.verdict.value === "XFAIL" || controls.text.value.trim() !== "";
    document.querySelectorAll("#sec-expected > details").forEach(function (d) {
      if (looking && d.querySelector("tr.claim-row:not(.hidden-by-filter)")) d.open = true;
    });
  }
  Object.keys(controls).forEach(function (k) {
    controls[k].addEventListener(k === "text" ? "input" : "change", apply);
  });
  apply();
})();
