// The operator's dashboard: registrations per state, and registry
// certificates issued and revoked per day, drawn as SVG from the data.
import { get } from './api.js';
import { el, show, table } from './dom.js';

const NS = 'http://www.w3.org/2000/svg';
function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function plot(issued, revoked) {
  const days = [...new Set([...issued, ...revoked].map((d) => d.day))].sort();
  const at = (list, day) => (list.find((d) => d.day === day) || { count: 0 }).count;
  const max = Math.max(1, ...days.map((d) => Math.max(at(issued, d), at(revoked, d))));
  const w = 600, h = 220, left = 50, bottom = 30, bw = days.length ? (w - left - 10) / days.length : 0;
  const s = svg('svg', { viewBox: `0 0 ${w} ${h}`, width: '100%', role: 'img', 'aria-label': 'certificates issued and revoked per day' });
  s.append(svg('text', { x: 4, y: 14 }, `max ${max}`));
  days.forEach((d, i) => {
    const x = left + i * bw;
    const hi = ((h - bottom - 20) * at(issued, d)) / max, hr = ((h - bottom - 20) * at(revoked, d)) / max;
    s.append(svg('rect', { x, y: h - bottom - hi, width: bw / 2 - 1, height: hi, fill: '#00558c' }, undefined),
      svg('rect', { x: x + bw / 2, y: h - bottom - hr, width: bw / 2 - 1, height: hr, fill: '#a4000f' }),
      svg('text', { x, y: h - 10 }, d.slice(5)));
  });
  return el('figure', {}, s, el('figcaption', { text: 'Certificates per day: issued (blue), revoked (red)' }));
}

export async function dashboard() {
  const st = await get('stats');
  const states = Object.entries(st.state);
  show(el('h2', { text: 'Dashboard' }),
    table('Registrations per state', ['State', 'Count'], states.map(([k, n]) =>
      el('tr', {}, el('td', { text: k }), el('td', { class: 'num', text: n })))),
    plot(st.issued, st.revoked),
    table('Certificates per day', ['Day', 'Issued', 'Revoked'], [...new Set([...st.issued, ...st.revoked].map((d) => d.day))].sort().map((d) =>
      el('tr', {}, el('td', { text: d }), el('td', { class: 'num', text: (st.issued.find((x) => x.day === d) || { count: 0 }).count }),
        el('td', { class: 'num', text: (st.revoked.find((x) => x.day === d) || { count: 0 }).count })))));
}
