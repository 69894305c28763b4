// The JSON API (docs/api.md), same origin, the browser's client
// certificate. Every call that changes something carries Keyrite-Request:
// a page of another origin cannot send it, so it cannot act as the account.
async function call(method, path, body) {
  const opts = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.headers['Keyrite-Request'] = '1';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch('/api/v1/' + path, opts);
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (!r.ok && !(data && data.results)) {
    throw new Error((data && data.error) || `HTTP ${r.status}`);
  }
  return data;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body);
