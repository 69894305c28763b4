#!/usr/bin/python3
"""The web console in a real headless Chromium (Debian's chromium and
chromium-driver, Selenium from python3-selenium), as one account: its client
certificate in an NSS database under HOME, selected for the service's name by
the profile's auto_select_certificate rule (reference section 12).

usage: console.py STEP --url URL --home DIR --shots DIR [ARGS]
Each step prints what it saw and exits 0, or prints why and exits 1."""
import argparse
import json
import os
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait


def fail(why):
    print('console: ' + why, file=sys.stderr)
    sys.exit(1)


def browser(a):
    os.environ['HOME'] = a.home  # NSS finds $HOME/.pki/nssdb
    profile = os.path.join(a.home, 'chromium')
    o = webdriver.ChromeOptions()
    o.binary_location = '/usr/bin/chromium'
    for flag in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync',
                 f'--window-size={a.width},900', '--user-data-dir=' + profile,
                 '--host-resolver-rules=MAP api.iotregistry.ca 127.0.0.1, MAP other.example 127.0.0.1'):
        o.add_argument(flag)
    o.add_experimental_option('prefs', {'profile': {'content_settings': {'exceptions': {'auto_select_certificate': {
        'https://api.iotregistry.ca,*': {'setting': {'filters': [{'ISSUER': {'CN': a.issuer}}]}}}}}}})
    d = webdriver.Chrome(service=Service('/usr/bin/chromedriver'), options=o)
    if a.width < 500:  # narrower than Chromium's window goes: a phone, emulated
        d.execute_cdp_cmd('Emulation.setDeviceMetricsOverride',
                          {'width': a.width, 'height': 844, 'deviceScaleFactor': 2, 'mobile': True})
    d.set_page_load_timeout(20)
    d.set_script_timeout(20)
    return d


def wait(d, cond, what, seconds=30):
    try:
        return WebDriverWait(d, seconds).until(cond)
    except TimeoutException:
        shot(d, 'failed-' + what.replace(' ', '-'))
        fail(f'timed out waiting for {what}; the page says: {d.find_element(By.TAG_NAME, "body").text[:600]}')


def text_is(locator, pred):
    def check(d):
        try:
            t = d.find_element(*locator).text
            return t if pred(t) else False
        except WebDriverException:
            return False
    return check


SHOTS = None


def shot(d, name):
    if SHOTS:
        d.save_screenshot(os.path.join(SHOTS, name + '.png'))


def open_console(d, a, screen='devices'):
    d.get(a.url + '/console/#/' + screen)
    if not d.current_url.startswith('https://'):
        fail('no page: ' + d.current_url)
    return wait(d, text_is((By.ID, 'who'), lambda t: '(' in t), 'the account')


def step_import(d, a):
    who = open_console(d, a, 'import')
    print('account', who)
    d.find_element(By.ID, 'mno').send_keys(a.args[1])
    d.find_element(By.ID, 'asp').send_keys(a.args[2])
    d.find_element(By.ID, 'csv').send_keys(a.args[0])
    t = wait(d, text_is((By.ID, 'status'), lambda t: t.startswith('preview')), 'the preview')
    print(t)
    rows = d.find_elements(By.CSS_SELECTOR, '#import-result tbody tr')
    refused = d.find_elements(By.CSS_SELECTOR, '#import-result tbody tr.refused')
    print('preview rows', len(rows), 'refused', len(refused))
    shot(d, '01-import-preview')
    d.find_element(By.ID, 'confirm').click()
    t = wait(d, text_is((By.ID, 'registered'), lambda t: 'done' in t), 'the import and registration', 120)
    print(d.find_element(By.ID, 'imported').text)
    print(t)
    shot(d, '02-imported')


def step_activate(d, a):
    open_console(d, a, 'activate')
    d.find_element(By.ID, 'manifest').send_keys(a.args[0])
    d.find_element(By.ID, 'activate').click()
    seen = set()
    deadline = time.time() + 300
    while time.time() < deadline:  # the progress as it moves
        seen.add(d.find_element(By.ID, 'progress-text').text)
        if d.find_elements(By.ID, 'activated'):
            break
        time.sleep(0.05)
    print(d.find_element(By.ID, 'activated').text)
    print('progress seen', len([s for s in seen if s]))
    shot(d, '03-activated')


def step_table(d, a):
    open_console(d, a, 'devices')
    if a.args:
        q = d.find_element(By.ID, 'q')
        q.send_keys(a.args[0])
        d.find_element(By.CSS_SELECTOR, 'form[role=search] button[type=submit]').click()
        time.sleep(0.5)
    wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, '#devices tbody tr')), 'the table')
    time.sleep(0.3)
    rows = d.find_elements(By.CSS_SELECTOR, '#devices tbody tr')
    cells = [r.find_elements(By.TAG_NAME, 'td') for r in rows]
    col = 2 if a.kind == 'operator' else 1
    ids = [c[col].text for c in cells if len(c) > col]
    print('rows', ' '.join(ids) if ids else 'none')
    shot(d, a.shot or '04-table')
    if len(a.args) > 1:  # the model cell of the first row, exactly as text
        print('model', cells[0][2].text)
        try:
            d.switch_to.alert
            fail('an alert ran')
        except NoAlertPresentException:
            pass
        n = d.execute_script("return document.querySelectorAll('#devices script, #devices img').length")
        print('elements injected', n)


def step_device(d, a):
    open_console(d, a, 'device/' + a.args[0])
    wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, 'pre.cert')), 'the certificate')
    for m in d.find_elements(By.CSS_SELECTOR, 'td.match'):
        print('record', m.text)
    for r in d.find_elements(By.CSS_SELECTOR, 'td.match.bad'):
        print('  ', r.find_element(By.XPATH, '..').text.replace('\n', ' | ')[:400])
    shot(d, a.shot or '05-device')


def step_transfer(d, a):
    open_console(d, a, 'transfer')
    d.find_element(By.ID, 'codes-file').send_keys(a.args[0])
    wait(d, lambda d: d.find_element(By.ID, 'codes').get_attribute('value').startswith('device,code'), 'the codes')
    shot(d, '06-transfer-codes')
    d.find_element(By.ID, 'transfer').click()
    print(wait(d, text_is((By.ID, 'transferred'), lambda t: 'done' in t), 'the transfer'))
    shot(d, '07-transferred')


def step_dashboard(d, a):
    open_console(d, a, 'dashboard')
    wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, 'svg rect')), 'the plot')
    for r in d.find_elements(By.CSS_SELECTOR, 'main table:first-of-type tbody tr'):
        print('state', r.text)
    shot(d, '08-dashboard')


def step_nocert(d, a):
    try:
        d.get(a.url + '/console/')
    except WebDriverException as e:
        print('refused', str(e).split('\n')[0])
        return
    body = d.find_element(By.TAG_NAME, 'body').text
    who = d.find_elements(By.ID, 'who')
    if who or 'ERR_' not in body:  # Chromium's error page names the net error
        fail('a page without a client certificate: ' + body[:200])
    print('refused', [w for w in body.split() if w.startswith('ERR_')][0])


def step_csrf(d, a):
    # a page of another origin, with the account's certificate in the
    # browser: its fetch (with the header) and its form (without) both fail
    open_console(d, a)  # the certificate chosen, as a user who has the console open
    d.get(a.args[0])
    r = d.execute_async_script('''
      const done = arguments[arguments.length - 1];
      fetch(arguments[0] + '/api/v1/delete', {method: 'POST', credentials: 'include', mode: 'cors',
            headers: {'Content-Type': 'application/json', 'Keyrite-Request': '1'},
            body: JSON.stringify({devices: [arguments[1]]})})
        .then((r) => done('answered ' + r.status)).catch((e) => done('blocked ' + e));''', a.url, a.args[1])
    print('fetch', r)
    d.execute_script('''
      const f = document.createElement('form');
      f.method = 'POST'; f.action = arguments[0] + '/api/v1/delete'; f.enctype = 'text/plain';
      const i = document.createElement('input'); i.name = '{"devices":["' + arguments[1] + '"],"x":"'; i.value = '"}';
      f.append(i); document.body.append(f); f.submit();''', a.url, a.args[1])
    time.sleep(2)
    print('form', d.find_element(By.TAG_NAME, 'body').text[:200].replace('\n', ' '))


def step_timing(d, a):
    # the page load and one further page of the table, from the browser's
    # own performance entries
    open_console(d, a, 'devices')
    wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, '#devices tbody tr')), 'the table')
    nav = d.execute_script("const n = performance.getEntriesByType('navigation')[0]; return n.loadEventEnd - n.startTime;")
    first = d.execute_script("""const r = performance.getEntriesByType('resource').filter((e) => e.name.includes('/api/v1/devices?'));
      return r.length ? r[r.length - 1].responseEnd : 0;""")
    # each further page timed in the page itself: from the click on Next to
    # the new rows in the table (a MutationObserver), not by polling
    pages = []
    for _ in range(int(a.args[0]) if a.args else 5):
        pages.append(d.execute_async_script("""
          const done = arguments[0], t0 = performance.now();
          const first = () => { const c = document.querySelector('#devices tbody tr td:nth-child(2)'); return c ? c.textContent : ''; };
          const old = first();
          const obs = new MutationObserver(() => { const f = first(); if (f && f !== old) { obs.disconnect(); done(performance.now() - t0); } });
          obs.observe(document.getElementById('main'), {childList: true, subtree: true});
          [...document.querySelectorAll('button')].find((b) => b.textContent === 'Next').click();"""))
    print(json.dumps({'load_ms': nav, 'first_screen_ms': first, 'page_ms': pages}))


def step_a11y(d, a):
    # axe-core's WCAG 2 A and AA rules on each screen named (its source
    # given with --axe), at this window's width; and the keyboard: the skip
    # link first, a screen reached with Tab and Enter alone
    src = open(a.axe).read()
    open_console(d, a, 'devices')
    wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, '#devices tbody tr')), 'the table')
    first = d.execute_script("""return [...document.querySelectorAll('a[href], button, input, select, textarea')]
        .filter((e) => !e.disabled && e.tabIndex >= 0)[0].textContent""")
    if first != 'Skip to the content':
        fail('the first stop of Tab is ' + repr(first))
    d.execute_script("document.querySelector('a.skip').focus()")
    target = a.args[0]
    for _ in range(12):
        d.switch_to.active_element.send_keys(Keys.TAB)
        if d.switch_to.active_element.get_attribute('data-screen') == target:
            break
    d.switch_to.active_element.send_keys(Keys.ENTER)
    wait(d, lambda d: d.current_url.endswith('#/' + target), 'the screen by keyboard')
    print('keyboard', target)
    problems = 0
    for screen in a.args[1:]:
        d.get(a.url + '/console/#/' + screen)
        wait(d, text_is((By.ID, 'who'), lambda t: '(' in t), 'the account')
        time.sleep(1)  # the screen's own requests
        r = d.execute_async_script(src + '''
          ;const done = arguments[arguments.length - 1];
          axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
            .then((r) => done(r.violations.map((v) => v.id + ': ' + v.help + ' (' + v.nodes.length + ')')));''')
        shot(d, (a.shot or 'a11y') + '-' + screen.replace('/', '-'))
        print('screen', screen, 'violations', len(r))
        for v in r:
            print('  ' + v)
        problems += len(r)
    # nothing wider than the window but the tables, which scroll
    width = d.execute_script('return window.innerWidth')
    wide = d.execute_script('return document.documentElement.scrollWidth > window.innerWidth + 1')
    print('window', width, 'page wider than the window', wide)
    if wide:
        fail(f'the page is wider than a {width} px window')
    if problems:
        fail(f'{problems} accessibility violations')


def main():
    p = argparse.ArgumentParser()
    p.add_argument('step')
    p.add_argument('args', nargs='*')
    p.add_argument('--url', required=True)
    p.add_argument('--home', required=True)
    p.add_argument('--shots')
    p.add_argument('--shot')
    p.add_argument('--kind', default='')
    p.add_argument('--issuer', default='IoT Registry Devices CA 2026')
    p.add_argument('--axe')
    p.add_argument('--width', type=int, default=1280)
    a = p.parse_args()
    global SHOTS
    SHOTS = a.shots
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
    d = browser(a)
    try:
        globals()['step_' + a.step](d, a)
    finally:
        d.quit()


if __name__ == '__main__':
    main()
