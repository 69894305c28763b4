// keyrite's web console: the registry's screens (seed 001) over the JSON
// API. It decides nothing: each screen shows what the API gives the
// account and sends what the account asks; the registry refuses the rest.
import { get } from './api.js';
import { el, say, show } from './dom.js';
import { devices } from './devices.js';
import { device } from './device.js';
import { importer, activator, transfer, messages } from './actions.js';
import { dashboard } from './dashboard.js';

const screens = {
  operator: [['devices', 'IoT database'], ['dashboard', 'Dashboard'], ['import', 'Import'], ['messages', 'Messages']],
  owner: [['devices', 'Devices'], ['import', 'Import'], ['messages', 'Messages']],
  asp: [['devices', '5G IoT Devices'], ['activate', 'Activate'], ['transfer', 'Transfer'], ['messages', 'Messages']],
  mno: [['devices', 'Devices'], ['activate', 'Activate'], ['messages', 'Messages']],
};

let me = null;

async function route() {
  const [, name = 'devices', arg] = location.hash.split('/');
  const nav = document.getElementById('nav');
  for (const a of nav.querySelectorAll('a')) {
    if (a.dataset.screen === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  say('');
  try {
    if (name === 'device' && arg) await device(me, decodeURIComponent(arg));
    else if (name === 'import') importer(me);
    else if (name === 'activate') activator(me);
    else if (name === 'transfer') transfer(me);
    else if (name === 'messages') await messages(me);
    else if (name === 'dashboard') await dashboard(me);
    else await devices(me);
  } catch (e) {
    show(el('p', { class: 'bad', text: e.message }));
    say(e.message, true);
  }
  document.getElementById('main').focus();
}

async function start() {
  try {
    me = await get('account');
  } catch (e) {
    show(el('p', { class: 'bad', text: 'The registry refused this client certificate: ' + e.message }));
    return;
  }
  document.getElementById('who').textContent = `${me.account} (${me.kind})`;
  document.getElementById('nav').replaceChildren(...(screens[me.kind] || []).map(([s, label]) =>
    el('a', { href: '#/' + s, 'data-screen': s, text: label })));
  window.addEventListener('hashchange', route);
  await route();
}

start();
