// The script of the HTML report (src/load/report.ts), run by the browser: it reads the data
// embedded as JSON (#report-data) and draws the charts with Chart.js, each with the deploy
// markers as vertical lines. It leaves what it drew on window (batonCharts, batonMarks) so a
// test in a real browser can check it.

/** Colours and dash patterns of the deploy markers, by kind. */
export const MARK_STYLE = {
  start: { colour: '#455a64', dash: [6, 4] },
  // Black, as no version is: the moment traffic moved stands out on the version chart.
  switch: { colour: '#000000', dash: [] },
  end: { colour: '#455a64', dash: [2, 3] },
} as const;

export const PAGE_SCRIPT = `
const d = JSON.parse(document.getElementById('report-data').textContent);
const STYLE = ${JSON.stringify(MARK_STYLE)};
// Second k of the run is the band of index k (offset scales): time t sits at index t - 0.5.
window.batonMarks = {};
const markers = {
  id: 'batonMarkers',
  afterDatasetsDraw(chart) {
    const x = chart.scales.x;
    const area = chart.chartArea;
    const ctx = chart.ctx;
    const drawn = [];
    let starts = 0;
    ctx.save();
    d.marks.forEach((m) => {
      // Whole pixels: a 2px line on a pixel edge covers two columns exactly, crisp.
      const px = Math.round(x.getPixelForValue(m.t - 0.5));
      if (!(px >= area.left && px <= area.right)) return;
      const s = STYLE[m.kind];
      ctx.strokeStyle = s.colour;
      ctx.fillStyle = s.colour;
      ctx.lineWidth = 2;
      ctx.setLineDash(s.dash);
      ctx.beginPath();
      ctx.moveTo(px, Math.round(area.top));
      ctx.lineTo(px, Math.round(area.bottom));
      ctx.stroke();
      // Only starts are labelled (with the version): many deploys would bury the chart in text.
      // The line styles are in the legend, every step in the table below.
      if (m.kind === 'start') {
        ctx.font = '10px system-ui, sans-serif';
        ctx.fillText(m.label.replace(/^start /, ''), px + 3, area.top + 10 + (starts++ % 2) * 11);
      }
      drawn.push({ kind: m.kind, label: m.label, x: px, top: area.top, bottom: area.bottom });
    });
    ctx.restore();
    window.batonMarks[chart.canvas.id] = drawn;
  },
};
const opts = (title, stacked) => ({ animation: false, plugins: { title: { display: true, text: title } },
  scales: { x: { title: { display: true, text: 'second' }, stacked, offset: true }, y: { beginAtZero: true, stacked } } });
const chart = (id, type, datasets, title, stacked) =>
  new Chart(document.getElementById(id), { type, data: { labels: d.t, datasets }, options: opts(title, stacked), plugins: [markers] });
const charts = [
  chart('rate', 'line', [{ label: 'sent/s', data: d.sent, borderColor: '#1565c0' }, { label: 'ok/s', data: d.ok, borderColor: '#2e7d32' }],
    'Requests per second'),
  chart('errors', 'bar', [{ label: 'failed/s', data: d.failed, backgroundColor: '#c62828' }], 'Failed requests per second'),
  chart('latency', 'line', [{ label: 'p50 ms', data: d.p50, borderColor: '#2e7d32' }, { label: 'p99 ms', data: d.p99, borderColor: '#ef6c00' }],
    'Latency (from the intended send time)'),
  chart('versions', 'bar', d.versions.map((v) => ({ label: v.v, data: v.n, backgroundColor: v.colour, borderColor: v.colour })),
    'Answers by version', true),
];
window.batonCharts = charts.length;
`;
