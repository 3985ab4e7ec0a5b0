// The dashboard's loss/metric chart: the API's series (/api/runs/:id/metrics) drawn with uPlot
// on one x axis (step, epoch or index). Loaded before app.js, which uses window.ckptguardChart.
"use strict";

(() => {
  const COLORS = ["#2f6fde", "#d93025", "#1f9d55", "#d98e04", "#8e44ad", "#00838f", "#6d4c41"];
  const HEIGHT = 220;

  /** uPlot wants columns: the union of every series' x values, and each series' y at those (null where it has none). */
  function toColumns(series) {
    const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
    const index = new Map(xs.map((x, i) => [x, i]));
    const columns = series.map((s) => {
      const column = new Array(xs.length).fill(null);
      for (const [x, y] of s.points) column[index.get(x)] = y;
      return column;
    });
    return [xs, ...columns];
  }

  function create(holder, emptyNote) {
    let plot = null;
    let plotKey = "";
    const width = () => Math.max(240, holder.clientWidth);
    window.addEventListener("resize", () => {
      if (plot) plot.setSize({ width: width(), height: HEIGHT });
    });

    function render(metrics) {
      const series = metrics.series.filter((s) => s.points.length > 0);
      emptyNote.hidden = series.length > 0;
      if (series.length === 0 || typeof uPlot === "undefined") {
        if (plot) plot.destroy();
        plot = null;
        plotKey = "";
        return;
      }
      const feedNames = new Set(series.filter((s) => s.source === "feed").map((s) => s.name));
      const beside = (s) => s.source === "checkpoints" && feedNames.has(s.name);
      const label = (s) => (beside(s) ? `${s.name} (checkpoints)` : s.name);
      const data = toColumns(series);
      const key = `${metrics.x}|${series.map(label).join("|")}`;
      if (plot && key === plotKey) {
        plot.setData(data);
        return;
      }
      if (plot) plot.destroy();
      plotKey = key;
      plot = new uPlot({
        width: width(), height: HEIGHT,
        scales: { x: { time: false } },
        axes: [{ label: metrics.x, stroke: "#888" }, { stroke: "#888" }],
        // A checkpoint series beside the script's own one of the same name: dashed, so the saves stand out.
        series: [{ label: metrics.x }, ...series.map((s, i) => ({
          label: label(s), stroke: COLORS[i % COLORS.length], width: 2, spanGaps: true,
          ...(beside(s) ? { dash: [4, 4] } : {}),
          points: { show: s.source === "checkpoints" || s.points.length < 40 },
        }))],
      }, data, holder);
    }

    return { render };
  }

  window.ckptguardChart = { create };
})();
