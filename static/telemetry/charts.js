// Draws the telemetry page from /telemetry/data.json with uPlot; refreshes every 15 seconds.
(function () {
  "use strict";
  const form = document.getElementById("telemetry-controls");
  const status = document.getElementById("telemetry-status");
  const palette = ["#3355ff", "#e8590c", "#2f9e44", "#ae3ec9", "#f08c00", "#1098ad", "#c2255c", "#5c940d"];
  const charts = {};
  window.smarterosCharts = charts;

  function draw(id, title, names, data, opts) {
    const el = document.getElementById(id);
    if (charts[id]) { charts[id].destroy(); delete charts[id]; }
    el.textContent = "";
    const hasPoints = data.slice(1).some((s) => s.some((v) => v !== null));
    if (!hasPoints) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "No data in this range.";
      el.appendChild(p);
      return;
    }
    const series = [{}].concat(names.map((name, i) => Object.assign(
      { label: name, stroke: palette[i % palette.length], width: 2, spanGaps: true, points: { show: true, size: 6 } }, (opts && opts.series && opts.series[i]) || {})));
    charts[id] = new uPlot({
      width: el.clientWidth || 560, height: 240, series: series,
      axes: (opts && opts.axes) || [{}, {}], scales: (opts && opts.scales) || {},
    }, data, el);
  }

  function fill(id, rows, cells) {
    const body = document.querySelector("#" + id + " tbody");
    body.textContent = "";
    if (!rows.length) {
      const tr = body.insertRow(); const td = tr.insertCell();
      td.colSpan = 6; td.className = "empty"; td.textContent = "Nothing in this range.";
      return;
    }
    rows.forEach((row) => { const tr = body.insertRow(); cells(row).forEach((v) => { tr.insertCell().textContent = v; }); });
  }

  async function refresh() {
    const params = new URLSearchParams(new FormData(form));
    let data;
    try {
      const response = await fetch(form.dataset.url + "?" + params, { headers: { Accept: "application/json" } });
      data = await response.json();
      if (!response.ok) { status.textContent = data.message || data.error || "Error " + response.status; return; }
    } catch (err) {
      status.textContent = "Could not reach SmarterOS (" + err + ")";
      return;
    }
    if (data.empty) {
      status.textContent = data.message || "No telemetry in this range yet.";
    } else {
      status.textContent = "Updated " + new Date().toLocaleTimeString() + " · step " + data.step_seconds + " s";
    }
    if (!data.latency) return;
    draw("chart-latency", "p95", data.latency.operations, data.latency.p95);
    draw("chart-volume", "volume", ["calls", "error rate %"], data.volume, {
      series: [{ fill: "rgba(51,85,255,0.08)" }, { stroke: "#c0392b", scale: "%" }],
      scales: { "%": { range: [0, 100] } },
      axes: [{}, { label: "calls" }, { side: 1, scale: "%", label: "error %" }],
    });
    draw("chart-topics", "topics", data.topics.names, data.topics.series);
    draw("chart-tokens", "tokens", data.tokens_per_tenant.tenants, data.tokens_per_tenant.series);
    fill("table-tools", data.tools, (r) => [r.operation, r.calls, r.error_rate + "%", r.p50_ms, r.p95_ms, r.p99_ms]);
    fill("table-errors", data.error_types, (r) => [r.error_type, r.count]);
    fill("table-tokens", data.tokens, (r) => [r.provider, r.model, r.tenant, r.tokens_in, r.tokens_out]);
  }

  form.addEventListener("change", refresh);
  document.addEventListener("DOMContentLoaded", refresh);
  if (document.readyState !== "loading") refresh();
  setInterval(refresh, 15000);
})();
