// The screens that act on many devices from a file: import (a preview of
// every row first), activation from the MNO's manifest (in parts, with
// progress), a transfer with the owner's codes; and the poll queue.
import { get, post } from './api.js';
import { el, fileText, say, show, table } from './dom.js';

function outcome(caption, r) {
  return table(caption, ['Line', 'Device', 'Result', 'Reason'], (r.results || []).map((x) =>
    el('tr', { class: x.result === 'refused' ? 'refused' : 'done' }, el('td', { class: 'num', text: x.line || '' }),
      el('td', { text: x.device || '' }), el('td', { text: x.result }), el('td', { text: x.reason || '' }))));
}

function summary(name, r) {
  const s = r.summary || { done: 0, unchanged: 0, refused: 0 };
  return `${name}: ${s.done} done, ${s.unchanged} unchanged, ${s.refused} refused`;
}

export function importer(me) {
  const file = el('input', { id: 'csv', type: 'file', accept: '.csv,text/csv' });
  const mno = el('input', { id: 'mno', type: 'text', autocomplete: 'off' });
  const asp = el('input', { id: 'asp', type: 'text', autocomplete: 'off' });
  const out = el('div', { id: 'import-result', 'aria-live': 'polite' });
  const confirm = el('button', { id: 'confirm', disabled: true }, 'Import these devices');
  let text = '';
  const body = () => ({ csv: text, ...(mno.value.trim() ? { mno: mno.value.trim() } : {}) });
  file.addEventListener('change', async () => {
    confirm.disabled = true;
    try {
      text = await fileText(file);
      const r = await post('import', { ...body(), preview: true });
      out.replaceChildren(el('p', { text: summary('Preview (nothing imported yet)', r) }), outcome('Chosen file', r));
      confirm.disabled = !(r.summary && r.summary.done > 0);
      say(summary('preview', r), r.summary.refused > 0);
    } catch (e) { say(e.message, true); }
  });
  confirm.addEventListener('click', async () => {
    confirm.disabled = true;
    try {
      const r = await post('import', body());
      const nodes = [el('p', { id: 'imported', text: summary('Imported', r) }), outcome('Import', r)];
      const ids = r.results.filter((x) => x.result === 'imported' || x.result === 'unchanged').map((x) => x.device);
      if (asp.value.trim() && ids.length) {
        const g = await post('register', { asp: asp.value.trim(), devices: ids });
        nodes.push(el('p', { id: 'registered', text: summary('Registered with ' + asp.value.trim(), g) }));
      }
      out.replaceChildren(...nodes);
      say(summary('import', r), r.summary.refused > 0);
    } catch (e) { say(e.message, true); }
  });
  show(el('h2', { text: 'Adding devices' }),
    el('p', { text: 'A CSV file: Device ID,Model,Version[,MNO][,Owner]. Every row is checked before anything is imported.' }),
    el('div', { class: 'toolbar' }, el('label', { for: 'csv', text: 'CSV file' }), file),
    el('div', { class: 'toolbar' }, el('label', { for: 'mno', text: 'MNO (rows without one)' }), mno,
      el('label', { for: 'asp', text: 'Then register with ASP' }), asp),
    confirm, out);
}

// The manifest's rows, sent in parts so that a bulk activation shows its
// progress; each part is a whole CSV with the header.
export function activator(me) {
  const file = el('input', { id: 'manifest', type: 'file', accept: '.csv,text/csv' });
  const bar = el('progress', { id: 'progress', max: 1, value: 0, 'aria-label': 'activation progress' });
  const note = el('p', { id: 'progress-text', 'aria-live': 'polite' });
  const out = el('div', { id: 'activate-result' });
  const go = el('button', { id: 'activate' }, 'Activate');
  go.addEventListener('click', async () => {
    go.disabled = true;
    try {
      const lines = (await fileText(file)).split(/\r?\n/).filter((l) => l.length);
      const head = lines.shift();
      const part = 100, all = { results: [], summary: { done: 0, unchanged: 0, refused: 0 } };
      bar.max = lines.length;
      for (let i = 0; i < lines.length; i += part) {
        const r = await post('activate', { csv: [head, ...lines.slice(i, i + part)].join('\n') + '\n' });
        all.results.push(...r.results);
        for (const k of ['done', 'unchanged', 'refused']) all.summary[k] += r.summary[k];
        bar.value = Math.min(i + part, lines.length);
        note.textContent = `${bar.value} of ${lines.length} devices`;
      }
      out.replaceChildren(el('p', { id: 'activated', text: summary('Activated', all) }), outcome('Activation', all));
      say(summary('activate', all), all.summary.refused > 0);
    } catch (e) { say(e.message, true); }
    go.disabled = false;
  });
  show(el('h2', { text: 'Activate' }),
    el('p', { text: "The MNO's manifest of the devices' CSRs: device_id,model,version,csr." }),
    el('div', { class: 'toolbar' }, el('label', { for: 'manifest', text: 'Manifest' }), file, go), bar, note, out);
}

export function transfer(me) {
  const codes = el('textarea', { id: 'codes', placeholder: 'device,code (one a line)' });
  const file = el('input', { id: 'codes-file', type: 'file', accept: '.csv,text/csv' });
  const out = el('div', { id: 'transfer-result' });
  file.addEventListener('change', async () => { try { codes.value = await fileText(file); } catch (e) { say(e.message, true); } });
  const go = el('button', { id: 'transfer' }, 'Transfer');
  go.addEventListener('click', async () => {
    let text = codes.value.trim();
    if (!/^device,code/.test(text)) text = 'device,code\n' + text;
    try {
      const r = await post('transfer/request', { csv: text + '\n' });
      out.replaceChildren(el('p', { id: 'transferred', text: summary('Transfer', r) }), outcome('Transfer', r));
      say(summary('transfer', r), r.summary.refused > 0);
    } catch (e) { say(e.message, true); }
  });
  show(el('h2', { text: 'Transfer' }),
    el('p', { text: "The owner's auth codes: device,code, typed or from a file." }),
    el('label', { for: 'codes', text: 'Codes' }), codes,
    el('div', { class: 'toolbar' }, el('label', { for: 'codes-file', text: 'or a file' }), file, go), out);
}

export async function messages(me) {
  const p = await get('poll');
  const nodes = [el('h2', { text: 'Messages' }), el('p', { text: `${p.count} waiting` })];
  if (p.message) {
    const m = p.message;
    nodes.push(el('p', { id: 'message', text: `${m.time} ${m.device}: ${m.event} (${m.detail})` }),
      el('button', { onclick: async () => { await post(`poll/${m.id}/ack`, {}); messages(me); } }, 'Acknowledge'));
  }
  show(...nodes);
}
