// The devices table: "5G IoT Devices" for a provider, the "IoT database"
// for the operator. Paged, filtered and sorted by the server (keyset
// pages: a million devices page as fast as ten); actions on the rows
// chosen, each an API call the registry decides.
import { get, post } from './api.js';
import { el, say, show, table } from './dom.js';

const PAGE = 50;
const view = { q: '', state: '', desc: false, cursors: [''] };

function query() {
  const p = new URLSearchParams({ limit: String(PAGE) });
  if (view.q) p.set('q', view.q);
  if (view.state) p.set('state', view.state);
  if (view.desc) p.set('sort', '-id');
  const after = view.cursors[view.cursors.length - 1];
  if (after) p.set('after', after);
  return 'devices?' + p.toString();
}

const actions = {
  owner: [['authcode', 'Auth codes'], ['register', 'Register with ASP…'], ['switch-mno', 'Switch MNO…'], ['delete', 'Delete']],
  asp: [['reset', 'Reset'], ['deactivate', 'Deactivate'], ['reactivate', 'Reactivate'], ['hold', 'Hold'], ['unhold', 'Unhold']],
  mno: [['payload', 'Payload']],
  operator: [['deactivate', 'Deactivate'], ['hold', 'Hold'], ['unhold', 'Unhold']],
};

function profileStatus(r) {
  if (!r.profile_id) return '';
  return r.state === 'active' ? 'generated' : 'revoked';
}

function rowOf(me, r) {
  const pick = el('input', { type: 'checkbox', value: r.device, 'aria-label': 'choose ' + r.device });
  const link = el('a', { href: '#/device/' + encodeURIComponent(r.device), text: 'view' });
  if (me.kind === 'operator') {
    return el('tr', {}, el('td', {}, pick), el('td', { text: r.asp || '' }),
      el('td', { text: r.device }), el('td', { text: r.mno || '' }),
      el('td', { text: r.created || '' }), el('td', { text: r.updated || '' }),
      el('td', { text: r.state }), el('td', { class: 'num', text: r.profile_id || '' }),
      el('td', { text: profileStatus(r) }), el('td', {}, link));
  }
  return el('tr', {}, el('td', {}, pick), el('td', { text: r.device }), el('td', { text: r.model }),
    el('td', { text: r.auth_code ? '*****' : '' }), el('td', { text: r.asp || '' }), el('td', { text: r.state }),
    el('td', { class: 'num', text: r.profile_id || '' }), el('td', { text: profileStatus(r) }),
    el('td', { text: (r.flags || []).join(' ') }), el('td', {}, link));
}

const heads = {
  operator: ['', 'Application Service Provider', 'eUICCID/eID', 'Mobile Network Operator', 'Created', 'Last update', 'State', 'Profile ID', 'Profile Status', 'CERT / Keys / DNSSEC'],
  other: ['', 'eUICCID/eID', 'IoT Device Model', 'Authorization Code', 'ASP', 'State', 'IoT Profile ID', 'IoT Profile Status', 'Flags', 'CERT / Keys / DNSSEC'],
};

function chosen() {
  return [...document.querySelectorAll('#devices tbody input[type=checkbox]:checked')].map((c) => c.value);
}

function results(r) {
  return table('Results', ['Device', 'Result', 'Reason'], (r.results || []).map((x) =>
    el('tr', { class: x.result === 'refused' ? 'refused' : 'done' }, el('td', { text: x.device }),
      el('td', { text: x.result + (x.auth_code ? ' ' + x.auth_code : '') }), el('td', { text: x.reason || '' }))));
}

async function act(me, cmd, out) {
  const ids = chosen();
  if (!ids.length) { say('Choose devices first', true); return; }
  const body = { devices: ids };
  if (cmd === 'register') { body.asp = prompt('Register with which ASP?'); if (!body.asp) return; }
  if (cmd === 'switch-mno') { body.mno = prompt('Switch to which MNO?'); if (!body.mno) return; }
  const r = await post(cmd, body);
  const s = r.summary || {};
  say(`${cmd}: ${s.done} done, ${s.unchanged} unchanged, ${s.refused} refused`, s.refused > 0);
  if (cmd === 'payload') {
    for (const x of r.results) {
      if (!x.payload) continue;
      const bytes = Uint8Array.from(atob(x.payload), (c) => c.charCodeAt(0));
      const a = el('a', { href: URL.createObjectURL(new Blob([bytes], { type: 'application/pkcs7-mime' })), download: x.device + '.p7m', text: x.device + '.p7m' });
      out.append(el('p', {}, 'Payload: ', a));
    }
  }
  out.append(results(r));
  await load(me, out);
}

async function load(me, out) {
  const page = await get(query());
  const rows = page.devices.map((r) => rowOf(me, r));
  const t = table(me.kind === 'operator' ? 'IoT database' : '5G IoT Devices',
    heads[me.kind === 'operator' ? 'operator' : 'other'], rows);
  t.id = 'devices';
  const first = view.cursors.length === 1;
  const pager = el('div', { class: 'toolbar' },
    el('span', { text: `Showing rows ${(view.cursors.length - 1) * PAGE + (rows.length ? 1 : 0)} to ${(view.cursors.length - 1) * PAGE + rows.length}` }),
    el('button', { class: 'secondary', disabled: first, onclick: () => { view.cursors.pop(); load(me, out); } }, 'Previous'),
    el('button', { class: 'secondary', disabled: !page.next, onclick: () => { view.cursors.push(page.next); load(me, out); } }, 'Next'));
  const old = document.getElementById('devices-page');
  const box = el('div', { id: 'devices-page' }, t, pager);
  if (old) old.replaceWith(box); else out.before(box);
}

export async function devices(me) {
  const out = el('div', { id: 'results', 'aria-live': 'polite' });
  const q = el('input', { id: 'q', type: 'search', value: view.q, inputmode: 'numeric' });
  const st = el('select', { id: 'state' }, ['', 'listed', 'registered', 'active', 'deactivated', 'pendingDelete']
    .map((s) => el('option', { value: s, selected: s === view.state, text: s || 'any' })));
  const sort = el('button', { class: 'secondary', onclick: () => { view.desc = !view.desc; view.cursors = ['']; load(me, out); } }, 'Sort by id ↑↓');
  const filters = el('form', { class: 'toolbar', role: 'search', onsubmit: (ev) => { ev.preventDefault(); view.q = q.value.trim(); view.state = st.value; view.cursors = ['']; load(me, out); } },
    el('label', { for: 'q', text: 'Device id begins with' }), q,
    el('label', { for: 'state', text: 'State' }), st, el('button', { type: 'submit' }, 'Filter'), sort);
  const bar = el('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Actions on the chosen devices' },
    (actions[me.kind] || []).map(([cmd, label]) => el('button', { 'data-cmd': cmd, onclick: () => act(me, cmd, out).catch((e) => say(e.message, true)) }, label)));
  show(el('h2', { text: me.kind === 'operator' ? 'IoT database' : '5G IoT Devices' }), filters, bar, out);
  await load(me, out);
}
