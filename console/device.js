// A device's page: its registrations, certificates, published records and
// their live check, and its history: what the API shows this account.
import { get } from './api.js';
import { el, show, table } from './dom.js';

function registrations(info) {
  return table('Registrations', ['ASP', 'State', 'Flags', 'IoT Profile ID', 'Owner', 'MNO', 'Model'],
    info.registrations.map((r) => el('tr', {}, el('td', { text: r.asp || '' }), el('td', { text: r.state }),
      el('td', { text: (r.flags || []).join(' ') }), el('td', { class: 'num', text: r.profile_id || '' }),
      el('td', { text: r.owner || '' }), el('td', { text: r.mno || '' }), el('td', { text: r.model }))));
}

function certificates(c) {
  if (!c.certificates.length) return el('p', { text: 'No certificate.' });
  return el('div', {}, c.certificates.map((x) => el('section', { 'aria-label': 'certificate ' + x.serial },
    el('h3', { text: `Profile ${x.profile_id} (${x.asp}): ${x.status}` }),
    el('p', { text: `${x.subject}, serial ${x.serial}, valid until ${new Date(x.not_after * 1000).toISOString().slice(0, 10)}` }),
    el('pre', { class: 'cert', text: x.certificate }))));
}

function records(r) {
  if (!r.records.length) return el('p', { text: 'No published records.' });
  // the seed's words: "CERT match" beside the device's certificate,
  // "Record match" beside its provider's service key
  const name = (x) => (x.of === 'service' ? 'Record match' : x.type + ' match');
  return table('Published records', ['Of', 'Owner name', 'Type', 'Expected', 'Published', 'Match'],
    r.records.map((x) => el('tr', {}, el('td', { text: x.of === 'service' ? 'the provider\'s service' : 'the device' }),
      el('td', { text: x.owner }), el('td', { text: x.type }),
      el('td', {}, el('code', { text: x.expected })), el('td', {}, el('code', { text: x.published || x.error || '' })),
      el('td', { class: 'match ' + (x.match ? 'good' : 'bad'), text: x.match ? name(x) + ' ✓' : (x.checked ? 'mismatch ✗' : 'not checked') }))));
}

function history(h) {
  return table('History', ['#', 'Time', 'What'], h.history.map((e) =>
    el('tr', {}, el('td', { class: 'num', text: e.seq }), el('td', { text: e.time }), el('td', { text: e.kind + ' ' + e.detail }))));
}

export async function device(me, id) {
  const enc = encodeURIComponent(id);
  const [info, certs, hist, recs] = await Promise.all([get('devices/' + enc), get(`devices/${enc}/certificates`),
    get(`devices/${enc}/history`), get(`devices/${enc}/records`)]);
  show(el('h2', { text: 'Device ' + id }), registrations(info),
    el('h3', { text: 'CERT / Keys / DNSSEC' }), records(recs), certificates(certs),
    el('h3', { text: 'History' }), history(hist),
    el('p', {}, el('a', { href: '#/devices', text: 'Back to the devices' })));
}
