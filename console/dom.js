// Elements built from data: text only ever goes in as textContent, never as
// HTML, so a model name or a CSV cell holding markup shows as that text.
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (k === 'text') e.textContent = String(v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function table(caption, heads, rows) {
  // a region that scrolls sideways on a narrow screen, so it takes the focus
  return el('div', { class: 'table', tabindex: 0, role: 'region', 'aria-label': caption },
    el('table', {},
      el('caption', { text: caption }),
      el('thead', {}, el('tr', {}, heads.map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', { colspan: heads.length, text: 'No devices found' })))));
}

export function say(text, bad = false) {
  const s = document.getElementById('status');
  s.textContent = text;
  s.className = bad ? 'bad' : '';
}

export function show(...nodes) {
  const m = document.getElementById('main');
  m.replaceChildren(...nodes);
}

// A file chosen in an <input type=file>, as text.
export function fileText(input) {
  return new Promise((resolve, reject) => {
    const f = input.files && input.files[0];
    if (!f) { reject(new Error('no file chosen')); return; }
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error);
    r.readAsText(f);
  });
}
