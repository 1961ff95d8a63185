// Drives the system Chromium (through playwright-core) against a real
// `broker serve` on 127.0.0.1 (ephemeral port, temp database), with data
// written by the `broker` CLI. Run by crates/broker-cli/tests/dashboard.rs:
//   BROKER_BIN=.../broker SCREENSHOTS=docs/screenshots node dashboard.mjs
// Exits non-zero (with the failed check on stderr) if anything is wrong.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BROKER = process.env.BROKER_BIN;
const SHOTS = process.env.SCREENSHOTS || '';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const BIG_DB = process.env.BIG_DB || ''; // a database with 10,000 queues
// With BROKER_DB_URL, everything runs on PostgreSQL (`--db`; the schema
// comes from BROKER_DATABASE_SCHEMA in the environment).
const DB_URL = process.env.BROKER_DB_URL || '';
assert.ok(BROKER, 'BROKER_BIN must name the broker binary');

const dir = mkdtempSync(join(tmpdir(), 'lb-dash-'));
const db = join(dir, 'dash.db');
const children = [];
let browser = null;

function where(file) { return DB_URL ? ['--db', DB_URL] : ['-f', file]; }

function cli(...args) {
  return execFileSync(BROKER, [...where(db), ...args], { encoding: 'utf8', timeout: 30000 });
}

// Like cli, but an empty queue (exit status 2) answers ''.
function peekAll(queue) {
  try {
    return cli('peek', queue, '--all');
  } catch (e) {
    if (e.status === 2) return '';
    throw e;
  }
}

// Starts `broker serve` on an ephemeral port; resolves with its URL.
function serve(file) {
  return new Promise((resolve, reject) => {
    const child = spawn(BROKER, [...where(file), 'serve', '--http', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    const timer = setTimeout(() => reject(new Error('broker serve did not print its address')), 30000);
    child.on('exit', (code) => reject(new Error('broker serve exited: ' + code)));
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      const m = line.match(/http:\/\/(127\.0\.0\.1:\d+)/);
      if (m) resolve('http://' + m[1]); else reject(new Error('no address in ' + line));
    });
    child.stderr.resume();
  });
}

async function shot(page, name, fullPage) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, name + '.png'), fullPage: !!fullPage });
}

const dialogs = [];
async function newPage(options) {
  const context = await browser.newContext(Object.assign({ viewport: { width: 1100, height: 720 }, colorScheme: 'light' }, options || {}));
  const page = await context.newPage();
  page.setDefaultTimeout(15000);
  // Any alert/confirm/prompt is a failure: bodies must never run as script.
  page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => { if (m.type() === 'error' && !/40[13]/.test(m.text())) errors.push(m.text()); });
  page.errors = errors;
  return page;
}

async function login(page, url, secret) {
  await page.goto(url + '/');
  await page.locator('#api-key').fill(secret);
  await page.locator('#key-form button[type=submit]').click();
}

async function main() {
  // ---- data, written with the CLI -------------------------------------
  const admin = cli('keys', 'create', '--name', 'admin', '--allow', '*=read,write,delete,manage').trim();
  const reader = cli('keys', 'create', '--name', 'orders-reader', '--allow', 'orders.*=read').trim();
  cli('write', 'orders.eu', '{"order": 17, "items": [{"sku": "A-1", "qty": 2}], "note": "json body"}');
  cli('write', '-H', 'note=<img src=x onerror=alert(3)>', 'orders.eu', '<script>alert(1)</script><img src=x onerror=alert(2)><b>bold?</b>');
  cli('write', 'orders.eu', 'plain text order');
  cli('write', 'orders.us', 'second region');
  cli('write', 'billing', 'secret invoice 4711');
  cli('write', 'binary', 'bytes\u0001\u0002\u0003 here');
  cli('queue', 'config', 'jobs', '--max-receives', '1', '--dead-letter', 'jobs.dlq');
  for (const n of [1, 2, 3]) {
    cli('write', 'jobs', 'job ' + n);
    const leased = JSON.parse(cli('read', 'jobs', '--lease', '--json'));
    cli('nack', 'jobs', leased.receipt);
  }
  cli('subscribe', 'audit', 'orders.+', '--from', 'earliest');
  cli('publish', 'orders.created', '{"order": 18}');

  const url = await serve(db);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
  });

  // ---- the page is small and carries a strict policy ------------------
  const res = await fetch(url + '/');
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  let total = (await res.text()).length;
  for (const a of ['/assets/app.js', '/assets/app.css']) total += (await (await fetch(url + a)).text()).length;
  assert.ok(total < 100 * 1024, 'first page is ' + total + ' bytes');
  // The data routes need a key like the rest of the API.
  assert.equal((await fetch(url + '/v1/dashboard/overview')).status, 401);
  assert.equal((await fetch(url + '/v1/dashboard/stream')).status, 401);

  // ---- key prompt, then the overview ------------------------------------
  let page = await newPage();
  await page.goto(url + '/');
  await page.locator('#key-form').waitFor();
  await shot(page, 'key-prompt');
  await page.locator('#api-key').fill('lbk_wrong');
  await page.locator('#key-form button[type=submit]').click();
  await page.locator('#key-reason', { hasText: 'invalid API key' }).waitFor();
  assert.equal(await page.locator('#queues').count(), 0, 'a wrong key sees no queue');
  await page.locator('#api-key').fill(admin);
  await page.locator('#key-form button[type=submit]').click();
  await page.locator('#queues a', { hasText: 'orders.eu' }).waitFor();
  await page.locator('#live.on').waitFor();
  await page.locator('#server', { hasText: 'v0.' }).waitFor();
  const names = await page.locator('#queues tbody a').allTextContents();
  for (const q of ['billing', 'binary', 'jobs', 'jobs.dlq', 'orders.eu', 'orders.us', 'audit']) assert.ok(names.includes(q), q + ' in ' + names);
  const jobsRow = page.locator('#queues tr', { has: page.locator('a', { hasText: /^jobs$/ }) });
  assert.equal((await jobsRow.locator('td').nth(4).textContent()).trim(), '3', 'jobs shows its 3 dead letters');

  // ---- a queue appears live when the CLI writes to it ------------------
  await page.evaluate(() => { window.notReloaded = true; });
  cli('write', 'live.new', 'arrived while watching');
  await page.locator('#queues a', { hasText: 'live.new' }).waitFor({ timeout: 10000 });
  const liveRow = page.locator('#queues tr', { has: page.locator('a', { hasText: 'live.new' }) });
  assert.equal((await liveRow.locator('td').nth(1).textContent()).trim(), '1');
  cli('write', 'live.new', 'and another');
  await liveRow.locator('td').nth(1).filter({ hasText: /^2$/ }).waitFor({ timeout: 10000 });
  assert.equal(await page.evaluate(() => window.notReloaded), true, 'the page was not reloaded');
  // Its traffic shows as a chart of messages in and out (the server samples
  // every 5 s), and the totals get one too.
  const liveChart = liveRow.locator('td.traffic svg.spark');
  await liveChart.waitFor({ timeout: 20000 });
  assert.equal(await liveChart.locator('polyline.in').count(), 1);
  assert.equal(await liveChart.locator('polyline.out').count(), 1);
  assert.match(await liveChart.getAttribute('aria-label'), /^in [0-9.]+\/s, out [0-9.]+\/s lately/);
  await page.locator('#total-traffic svg.spark').waitFor();
  assert.match(await page.locator('#total-rate').textContent(), /\/s in · [0-9.]+\/s out$/);
  await shot(page, 'overview');

  // ---- a queue: peek safely, delete one, purge -------------------------
  // By keyboard: filter, Tab past the sort menu to the first queue, Enter.
  await page.locator('#filter').fill('orders.e');
  await page.locator('#rows-info', { hasText: '1–1 of 1' }).waitFor();
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'orders.eu');
  await page.keyboard.press('Enter');
  await page.waitForURL(/#\/queue\/orders\.eu$/);
  await page.locator('table.messages tbody tr').first().waitFor();
  assert.equal(await page.locator('table.messages tbody tr').count(), 3);
  // Oldest first by default; newest first on request.
  const firstBody = () => page.locator('table.messages tbody tr').first().locator('td.preview').nth(1).textContent();
  assert.match(await firstBody(), /"order": 17/);
  await page.locator('select.order').selectOption('newest');
  await page.locator('table.messages tbody tr').first().filter({ hasText: 'plain text order' }).waitFor();
  await page.locator('select.order').selectOption('oldest');
  await page.locator('table.messages tbody tr').first().filter({ hasText: '"order": 17' }).waitFor();
  assert.equal(await page.locator('table.messages tbody tr').count(), 3);
  const xssRow = page.locator('table.messages tbody tr', { hasText: '<script>alert(1)</script>' });
  await xssRow.locator('.peek-btn').click();
  const peeked = page.locator('tr.peek pre.body').last();
  await peeked.waitFor();
  assert.equal(await peeked.textContent(), '<script>alert(1)</script><img src=x onerror=alert(2)><b>bold?</b>');
  assert.match(await page.locator('tr.peek pre.headers').last().textContent(), /"note": "<img src=x onerror=alert\(3\)>"/);
  assert.equal(await page.locator('main script, main img, table.messages b, tr.peek b').count(), 0, 'markup in a body stays text');
  const jsonRow = page.locator('table.messages tbody tr', { hasText: '"order": 17' });
  await jsonRow.locator('.peek-btn').click();
  await page.locator('tr.peek', { hasText: 'JSON' }).waitFor();
  const pretty = await page.locator('tr.peek', { hasText: 'JSON' }).locator('pre.body').textContent();
  assert.ok(pretty.includes('\n  "items": [\n    {\n      "sku": "A-1"'), pretty);
  await shot(page, 'queue', true);
  // Delete the plain one, through the confirmation dialog.
  const plainRow = page.locator('table.messages tbody tr', { hasText: 'plain text order' });
  await plainRow.locator('.delete-btn').click();
  await page.locator('#confirm-ok').click();
  await page.locator('#status', { hasText: 'Deleted message' }).waitFor();
  await page.locator('table.messages tbody tr', { hasText: 'plain text order' }).waitFor({ state: 'detached' });
  assert.ok(!peekAll('orders.eu').includes('plain text order'), 'deleted in the database');

  // Move the JSON one elsewhere, naming the destination in the dialog.
  await page.locator('table.messages tbody tr', { hasText: '"order": 17' }).locator('.move-btn').click();
  assert.equal(await page.locator('#confirm-ok').isDisabled(), true, 'move waits for a destination');
  await page.locator('#confirm-typed').fill('orders.archive');
  await page.locator('#confirm-ok').click();
  await page.locator('#status', { hasText: 'to orders.archive' }).waitFor();
  assert.match(peekAll('orders.archive'), /"order": 17/);
  // The status shows before the page reloads: wait for the row to go.
  await page.locator('table.messages tbody tr', { hasText: '"order": 17' }).waitFor({ state: 'detached' });
  // Settings, edited.
  await page.locator('#settings-edit summary').click();
  await page.locator('#set-visibility').fill('45s');
  await page.locator('#settings-edit button[type=submit]').click();
  await page.locator('#queue-settings', { hasText: 'visibility 45s' }).waitFor();
  assert.match(cli('queue', 'config', 'orders.eu'), /visibility: 45s/);

  // Binary-looking bodies show as hex.
  await page.goto(url + '/#/queue/binary');
  await page.locator('table.messages .peek-btn').first().click();
  await page.locator('tr.peek', { hasText: 'binary (hex)' }).waitFor();
  assert.match(await page.locator('tr.peek pre.body').textContent(), /62 79 74 65 73 01 02 03/);

  // Purge needs the queue's name typed.
  await page.goto(url + '/#/queue/orders.us');
  await page.locator('table.messages tbody tr', { hasText: 'second region' }).waitFor();
  await page.locator('#purge').click();
  assert.equal(await page.locator('#confirm-ok').isDisabled(), true, 'purge waits for the name');
  await page.locator('#confirm-typed').fill('orders.us');
  await page.locator('#confirm-ok').click();
  await page.locator('#status', { hasText: 'Purged orders.us: 1 messages deleted' }).waitFor();
  assert.equal(peekAll('orders.us').trim(), '');

  // ---- dead letters: source, reason, redrive one -----------------------
  await page.locator('nav a[data-nav=dead]').click();
  const dlq = page.locator('section[data-dlq="jobs.dlq"]');
  await dlq.locator('tbody tr').first().waitFor();
  assert.equal(await dlq.locator('tbody tr').count(), 3);
  const first = dlq.locator('tbody tr', { hasText: 'job 1' });
  assert.ok((await first.textContent()).includes('jobs'), 'source shown');
  assert.ok((await first.textContent()).includes('nacked after 1 receives'), 'reason shown');
  await shot(page, 'dead-letters');
  await first.locator('.redrive-one').click();
  await page.locator('#status', { hasText: 'back to jobs' }).waitFor();
  await dlq.locator('tbody tr', { hasText: 'job 1' }).waitFor({ state: 'detached' });
  assert.equal(cli('peek', 'jobs').trim(), 'job 1', 'redriven to its source');
  // Redrive the rest, all at once.
  await dlq.locator('.redrive-all').click();
  await page.locator('#confirm-ok').click();
  await page.locator('#status', { hasText: 'Redrove 2 messages' }).waitFor();
  assert.equal(peekAll('jobs').trim().split('\n').length, 3);

  // ---- topics and subscriptions ------------------------------------------
  await page.locator('nav a[data-nav=topics]').click();
  await page.locator('#subscriptions td', { hasText: 'audit' }).waitFor();
  assert.ok((await page.locator('#topics').textContent()).includes('orders.created'));
  const auditRow = page.locator('#subscriptions tr', { hasText: 'audit' });
  assert.equal((await auditRow.locator('td').nth(2).textContent()).trim(), '1', 'lag of audit');
  assert.equal((await auditRow.locator('td.connected').textContent()).trim(), 'none');
  // A member streaming from the subscription shows as connected.
  const member = new AbortController();
  const stream = await fetch(url + '/v1/queues/audit/events', { headers: { 'X-API-Key': admin }, signal: member.signal });
  assert.equal(stream.status, 200);
  for (let i = 0; ; i++) {
    await page.locator('main button', { hasText: 'Refresh' }).click();
    if ((await auditRow.locator('td.connected').textContent()).trim() === '1 HTTP') break;
    assert.ok(i < 50, 'the member never showed');
    await page.waitForTimeout(100);
  }
  await shot(page, 'topics');
  member.abort();

  // ---- keys: create (secret shown once), revoke -----------------------
  await page.locator('nav a[data-nav=keys]').click();
  await page.locator('#keys td', { hasText: 'orders-reader' }).waitFor();
  await page.locator('#key-name').fill('made-in-browser');
  await page.locator('#key-allow').fill('reports.*=read');
  await page.locator('#create-key button[type=submit]').click();
  const secret = (await page.locator('#new-secret .secret').textContent()).trim();
  assert.match(secret, /^lbk_[0-9a-f]{64}$/);
  assert.ok(cli('keys', 'list').includes('made-in-browser'));
  await shot(page, 'keys');
  const made = page.locator('#keys tr', { hasText: 'made-in-browser' });
  await made.locator('.revoke').click();
  await page.locator('#confirm-ok').click();
  await page.locator('#status', { hasText: 'Revoked made-in-browser' }).waitFor();
  assert.ok(!cli('keys', 'list').includes('made-in-browser'));
  assert.deepEqual(page.errors, [], 'no script errors');
  await page.context().close();

  // ---- a key that may read orders.* only sees nothing else ------------
  page = await newPage({ viewport: { width: 390, height: 780 }, colorScheme: 'dark', isMobile: true, hasTouch: true });
  await login(page, url, reader);
  await page.locator('#queues a', { hasText: 'orders.eu' }).waitFor();
  const seen = await page.locator('#queues tbody a').allTextContents();
  assert.deepEqual(seen.sort(), ['orders.archive', 'orders.eu'], 'only orders.*: ' + seen);
  await shot(page, 'overview-phone-dark');
  const text = await page.locator('body').textContent();
  assert.ok(!text.includes('billing') && !text.includes('jobs'), 'no other queue named anywhere');
  await page.goto(url + '/#/queue/billing');
  await page.locator('#forbidden', { hasText: '403' }).waitFor();
  assert.ok(!(await page.locator('body').textContent()).includes('secret invoice'));
  assert.equal(await page.locator('table.messages tbody tr').count(), 0);
  await shot(page, 'forbidden-phone-dark');
  await page.goto(url + '/#/keys');
  await page.locator('#forbidden').waitFor();
  assert.equal(await page.locator('#keys').count(), 0, 'no key list for a reader');
  await page.goto(url + '/#/dead');
  await page.locator('h1', { hasText: 'Dead letters' }).waitFor();
  assert.equal(await page.locator('section[data-dlq]').count(), 0);
  // The reader cannot purge or delete, even by hand.
  const del = await page.evaluate(async (k) => (await fetch('/v1/queues/orders.eu', { method: 'DELETE', headers: { 'X-API-Key': k } })).status, reader);
  assert.equal(del, 403);
  await page.context().close();

  // ---- 10,000 queues -----------------------------------------------------
  if (BIG_DB) {
    const bigUrl = await serve(BIG_DB);
    page = await newPage();
    await page.goto(bigUrl + '/');
    await page.locator('#rows-info', { hasText: 'of 10,000' }).waitFor({ timeout: 60000 });
    await page.locator('#live.on').waitFor({ timeout: 60000 }); // the stream carries 10,000 rows too
    assert.equal(await page.locator('#queues tbody tr').count(), 200, 'one page of rows in the document');
    await page.locator('#next-page').click();
    await page.locator('#rows-info', { hasText: 'queues 201–400 of 10,000' }).waitFor();
    await page.locator('#filter').fill('q-09999');
    await page.locator('#rows-info', { hasText: '1–1 of 1' }).waitFor();
    await page.locator('#filter').fill('');
    await page.locator('#sort').selectOption('pending');
    await page.locator('#rows-info', { hasText: 'queues 1–200 of 10,000' }).waitFor();
    // The tab keeps answering while the stream refreshes 10,000 rows.
    for (let i = 0; i < 3; i++) assert.equal(await page.evaluate(() => 1 + 1), 2);
    await shot(page, 'overview-10000');
    await page.context().close();
  }

  assert.deepEqual(dialogs, [], 'no dialog ever opened (a body ran as script?)');
}

let failed = false;
// Bounded: give up (cleaning up below) well before the Rust test's limit.
const watchdog = setTimeout(() => { throw new Error('the browser test took over 200 s'); }, 200000);
try {
  await main();
  console.log('dashboard browser test: ok');
} catch (e) {
  failed = true;
  console.error('dashboard browser test failed:', e && e.stack ? e.stack : e);
} finally {
  clearTimeout(watchdog);
  if (browser) await browser.close().catch(() => {});
  for (const c of children) { c.removeAllListeners('exit'); c.kill('SIGTERM'); }
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
