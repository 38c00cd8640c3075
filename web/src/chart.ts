// One horizontal bar per sector, stacked by commitment status. Every status has its own colour
// AND its own pattern, and every segment wide enough carries its count, so the bars read
// without colour; the same numbers are in the table next to the chart.
import { BarController, BarElement, CategoryScale, Chart, Legend, LinearScale, Tooltip, type Plugin } from 'chart.js';
import type { CommitmentStatus } from './api.js';
import { statusLabel } from './dom.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

const STYLE: Record<CommitmentStatus, { colour: string; ink: string; pattern: 'none' | 'diagonal' | 'dots' | 'cross' | 'horizontal' }> = {
  pending: { colour: '#8a94a6', ink: '#ffffff', pattern: 'dots' },
  in_progress: { colour: '#1d5fa8', ink: '#ffffff', pattern: 'none' },
  delayed: { colour: '#b3541e', ink: '#ffffff', pattern: 'diagonal' },
  implemented: { colour: '#1f7a4d', ink: '#ffffff', pattern: 'horizontal' },
  cancelled: { colour: '#4a4f57', ink: '#ffffff', pattern: 'cross' },
};

function patternFill(status: CommitmentStatus): CanvasPattern | string {
  const { colour, pattern } = STYLE[status];
  if (pattern === 'none') return colour;
  const c = document.createElement('canvas');
  c.width = 10;
  c.height = 10;
  const g = c.getContext('2d');
  if (!g) return colour;
  g.fillStyle = colour;
  g.fillRect(0, 0, 10, 10);
  g.strokeStyle = 'rgba(255,255,255,0.45)';
  g.fillStyle = 'rgba(255,255,255,0.45)';
  g.lineWidth = 2;
  g.beginPath();
  if (pattern === 'diagonal') { g.moveTo(0, 10); g.lineTo(10, 0); g.moveTo(-2, 2); g.lineTo(2, -2); g.moveTo(8, 12); g.lineTo(12, 8); }
  if (pattern === 'horizontal') { g.moveTo(0, 5); g.lineTo(10, 5); }
  if (pattern === 'cross') { g.moveTo(0, 0); g.lineTo(10, 10); g.moveTo(10, 0); g.lineTo(0, 10); }
  g.stroke();
  if (pattern === 'dots') { g.beginPath(); g.arc(5, 5, 1.6, 0, Math.PI * 2); g.fill(); }
  return g.createPattern(c, 'repeat') ?? colour;
}

const segmentLabels: Plugin<'bar'> = {
  id: 'segmentLabels',
  afterDatasetsDraw(chart) {
    const { ctx } = chart;
    ctx.save();
    ctx.font = '600 12px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    chart.data.datasets.forEach((ds, i) => {
      const meta = chart.getDatasetMeta(i);
      if (meta.hidden) return;
      meta.data.forEach((bar, j) => {
        const v = Number(ds.data[j] ?? 0);
        const { x, y, base } = bar.getProps(['x', 'y', 'base'], true) as { x: number; y: number; base: number };
        if (!v || Math.abs(x - base) < 22) return;
        const label = String(v);
        const cx = (x + base) / 2;
        ctx.fillStyle = 'rgba(0,0,0,0.55)';
        const w = ctx.measureText(label).width + 8;
        ctx.fillRect(cx - w / 2, y - 9, w, 18);
        ctx.fillStyle = '#ffffff';
        ctx.fillText(label, cx, y);
      });
    });
    ctx.restore();
  },
};

export type SectorCounts = { sector: string; label: string; counts: Record<CommitmentStatus, number> };

export function sectorChart(canvas: HTMLCanvasElement, rows: SectorCounts[], statuses: CommitmentStatus[]): Chart<'bar'> {
  return new Chart(canvas, {
    type: 'bar',
    data: {
      labels: rows.map((r) => r.label),
      datasets: statuses.map((s) => ({
        label: statusLabel(s),
        data: rows.map((r) => r.counts[s]),
        backgroundColor: patternFill(s),
        borderColor: '#ffffff',
        borderWidth: 1,
        barThickness: 26,
      })),
    },
    options: {
      indexAxis: 'y',
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      scales: {
        x: { stacked: true, beginAtZero: true, ticks: { precision: 0, color: '#2b2f36' }, grid: { color: '#e3e6ea' }, title: { display: true, text: 'Commitments', color: '#2b2f36' } },
        y: { stacked: true, ticks: { color: '#1b1e23', font: { weight: 600 } }, grid: { display: false } },
      },
      plugins: {
        legend: { position: 'bottom', labels: { color: '#1b1e23', boxWidth: 18, boxHeight: 14, padding: 14 } },
        tooltip: { mode: 'index', intersect: false },
      },
    },
    plugins: [segmentLabels],
  });
}
