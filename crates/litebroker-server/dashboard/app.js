// The litebroker dashboard: plain JavaScript, no framework, no build step.
// Every piece of data reaches the page through textContent (never as HTML),
// and the server's Content-Security-Policy forbids inline script and eval.
'use strict';

(function () {
  const KEY_STORE = 'litebroker.apiKey';
  const PAGE_ROWS = 200; // overview rows per page
  const MSG_PAGE = 50; // messages per page
  let cleanup = null; // ends the page shown (its listeners and timers)

  const main = document.getElementById('main');
  const statusBox = document.getElementById('status');
  const liveBadge = document.getElementById('live');
  const serverInfo = document.getElementById('server');
  const changeKey = document.getElementById('change-key');

  // ---- small helpers -------------------------------------------------

  // Builds an element; string children become text nodes (never HTML).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    if (attrs) {
      for (const [k, v] of Object.entries(attrs)) {
        if (v === undefined || v === null || v === false) continue;
        if (k === 'class') node.className = v;
        else if (k === 'text') node.textContent = v;
        else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
        else node.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // An SVG chart of messages in and out per second over the intervals of
  // `timeline` (built with DOM calls: nothing is parsed as markup).
  const SVG = 'http://www.w3.org/2000/svg';
  function rates(timeline, counts) {
    const out = [];
    let from = timeline.start_ms;
    timeline.ends_ms.forEach((end, i) => {
      const secs = Math.max(0.001, (end - from) / 1000);
      out.push(((counts && counts[i]) || 0) / secs);
      from = end;
    });
    return out;
  }
  function fmtRate(r) { return r >= 100 ? fmtInt.format(Math.round(r)) : (Math.round(r * 10) / 10).toString(); }
  function trafficChart(timeline, traffic, width, height) {
    const ins = rates(timeline, traffic && traffic.in);
    const outs = rates(timeline, traffic && traffic.out);
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('class', 'spark');
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.setAttribute('role', 'img');
    const lastIn = ins.length ? ins[ins.length - 1] : 0;
    const lastOut = outs.length ? outs[outs.length - 1] : 0;
    const label = 'in ' + fmtRate(lastIn) + '/s, out ' + fmtRate(lastOut) + '/s lately; over the last ' +
      age((timeline.ends_ms[timeline.ends_ms.length - 1] || timeline.start_ms) - timeline.start_ms);
    svg.setAttribute('aria-label', label);
    const title = document.createElementNS(SVG, 'title');
    title.textContent = label;
    svg.append(title);
    const max = Math.max(1e-9, ...ins, ...outs);
    const ends = timeline.ends_ms;
    const span = Math.max(1, (ends[ends.length - 1] || timeline.start_ms) - timeline.start_ms);
    const x = (t) => (((t - timeline.start_ms) / span) * (width - 2) + 1).toFixed(1);
    const y = (v) => (height - 1.5 - (v / max) * (height - 3)).toFixed(1);
    const axis = document.createElementNS(SVG, 'line');
    axis.setAttribute('class', 'axis');
    axis.setAttribute('x1', 0); axis.setAttribute('x2', width);
    axis.setAttribute('y1', height - 0.5); axis.setAttribute('y2', height - 0.5);
    svg.append(axis);
    // Steps: each interval is a flat stretch at its rate, so even the
    // first one shows.
    for (const [cls, series] of [['in', ins], ['out', outs]]) {
      const pts = [];
      let from = timeline.start_ms;
      series.forEach((v, i) => {
        pts.push(x(from) + ',' + y(v), x(ends[i]) + ',' + y(v));
        from = ends[i];
      });
      if (!pts.length) continue;
      const line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('class', cls);
      line.setAttribute('points', pts.join(' '));
      svg.append(line);
    }
    return svg;
  }
  // The newest rates of `traffic` as text: "3.2/s in · 2.9/s out".
  function rateText(timeline, traffic) {
    if (!timeline || !timeline.ends_ms.length) return 'measuring…';
    const ins = rates(timeline, traffic && traffic.in);
    const outs = rates(timeline, traffic && traffic.out);
    return fmtRate(ins[ins.length - 1]) + '/s in · ' + fmtRate(outs[outs.length - 1]) + '/s out';
  }

  function setStatus(text, isError) {
    statusBox.textContent = text || '';
    statusBox.className = isError ? 'error' : '';
  }

  const fmtInt = new Intl.NumberFormat();
  function num(n) { return n === null || n === undefined ? '–' : fmtInt.format(n); }

  function age(ms) {
    if (ms === null || ms === undefined) return '–';
    const s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + (s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + Math.floor((s % 3600) / 60) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }

  function when(ms) { return ms ? new Date(ms).toISOString().replace('T', ' ').replace('Z', '') : '–'; }

  const enc = encodeURIComponent;

  // ---- the API ---------------------------------------------------------

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  function key() { return sessionStorage.getItem(KEY_STORE) || ''; }

  function headers(extra) {
    const h = Object.assign({ Accept: 'application/json' }, extra || {});
    const k = key();
    if (k) h['X-API-Key'] = k;
    return h;
  }

  // Calls the API; a 401 ends at the key prompt; other errors throw.
  async function api(method, path, body) {
    const used = key();
    const init = { method, headers: headers(body !== undefined ? { 'Content-Type': 'application/json' } : null) };
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
    const res = await fetch(path, init);
    let data = null;
    const text = await res.text();
    if (text) { try { data = JSON.parse(text); } catch (_) { data = null; } }
    if (!res.ok) {
      const err = (data && data.error) || {};
      const e = new ApiError(res.status, err.code || String(res.status), err.message || res.statusText);
      // A refusal of a key since replaced says nothing about the new one.
      if (res.status === 401 && used === key()) { showKeyPrompt(e.message); }
      throw e;
    }
    return data;
  }

  // Shows an error: a refused permission as a clear notice in place of the page.
  function fail(e, where) {
    if (e instanceof ApiError && e.status === 401) return; // the prompt is shown
    if (e instanceof ApiError && e.status === 403) {
      main.replaceChildren(el('h1', null, where || 'Not allowed'),
        el('p', { class: 'notice', id: 'forbidden' }, 'This API key is not allowed to see this (403): ' + e.message));
      return;
    }
    setStatus((where ? where + ': ' : '') + e.message, true);
  }

  // An action refused: said in the status line, the page stays.
  function failAction(e, where) {
    if (e instanceof ApiError && e.status === 401) return;
    const why = e instanceof ApiError && e.status === 403 ? 'not allowed with this key (403): ' : '';
    setStatus(where + ': ' + why + e.message, true);
  }

  // ---- the key prompt ---------------------------------------------------

  let prompting = false;
  // A new key starts from scratch: nothing the previous key saw stays.
  function showKeyPrompt(reason) {
    prompting = true;
    stopStream();
    overview = null;
    serverInfo.textContent = '';
    if (cleanup) { cleanup(); cleanup = null; }
    changeKey.hidden = true;
    setStatus('');
    const input = el('input', { type: 'password', id: 'api-key', autocomplete: 'off', required: true, spellcheck: 'false' });
    const form = el('form', { class: 'key', id: 'key-form' },
      el('h1', null, 'API key'),
      el('p', { class: reason ? 'notice' : 'muted', id: 'key-reason' },
        reason ? 'The server refused access (401): ' + reason : 'This server needs an API key.'),
      el('label', { for: 'api-key' }, 'Key (kept in this tab only)'), input,
      el('button', { type: 'submit', class: 'primary' }, 'Open the dashboard'));
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      sessionStorage.setItem(KEY_STORE, input.value.trim());
      prompting = false;
      route();
    });
    main.replaceChildren(form);
    input.focus();
  }

  changeKey.addEventListener('click', () => {
    sessionStorage.removeItem(KEY_STORE);
    showKeyPrompt('');
  });

  // ---- confirmation -----------------------------------------------------

  const dialog = document.getElementById('confirm');
  // Resolves true if the user confirms (and typed `word`, when given).
  function confirmAction(title, text, word) {
    return openDialog(title, text, word ? 'Type this to confirm: ' : null, word || '', (v) => v === word)
      .then((v) => v !== null);
  }

  // Resolves with what the user typed, or null if cancelled.
  function askText(title, text, label) {
    return openDialog(title, text, label, '', (v) => v.trim() !== '').then((v) => (v === null ? null : v.trim()));
  }

  function openDialog(title, text, label, word, valid) {
    return new Promise((resolve) => {
      document.getElementById('confirm-title').textContent = title;
      document.getElementById('confirm-text').textContent = text;
      const box = document.getElementById('confirm-typed-label');
      const typed = document.getElementById('confirm-typed');
      const ok = document.getElementById('confirm-ok');
      box.hidden = label === null;
      document.getElementById('confirm-prompt').textContent = label || '';
      document.getElementById('confirm-word').textContent = word;
      typed.value = '';
      ok.disabled = label !== null;
      typed.oninput = () => { ok.disabled = !valid(typed.value); };
      dialog.returnValue = '';
      dialog.onclose = () => {
        const confirmed = dialog.returnValue === 'ok' && (label === null || valid(typed.value));
        resolve(confirmed ? typed.value : null);
      };
      dialog.showModal();
      (label !== null ? typed : ok).focus();
    });
  }

  // ---- live overview (SSE over fetch, so the key travels in a header) ---

  let overview = null; // the latest overview
  let clockSkew = 0; // server clock - local clock, ms
  const listeners = new Set();
  let streamCtl = null;

  function setLive(on) {
    liveBadge.textContent = on ? 'live' : 'offline';
    liveBadge.className = 'live ' + (on ? 'on' : 'off');
  }

  function stopStream() {
    if (streamCtl) { streamCtl.abort(); streamCtl = null; }
    setLive(false);
  }

  function receive(data) {
    overview = data;
    clockSkew = data.now_ms - Date.now();
    serverInfo.textContent = 'v' + data.version + ' · up ' + age(data.uptime_seconds * 1000);
    for (const f of listeners) f(data);
  }

  async function startStream() {
    if (streamCtl) return;
    const ctl = new AbortController();
    streamCtl = ctl;
    try {
      const res = await fetch('/v1/dashboard/stream', { headers: headers({ Accept: 'text/event-stream' }), signal: ctl.signal });
      if (res.status === 401) { streamCtl = null; showKeyPrompt('invalid or missing key'); return; }
      if (!res.ok) throw new Error('stream: ' + res.status);
      setLive(true);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += value;
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let event = 'message';
          const data = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
          }
          if (event === 'overview' && data.length) receive(JSON.parse(data.join('\n')));
          if (event === 'error' && data.length) {
            const err = (JSON.parse(data.join('\n')).error) || {};
            setStatus('Live updates: ' + (err.message || 'error'), true);
          }
        }
      }
    } catch (e) {
      if (ctl.signal.aborted) return;
    }
    if (streamCtl === ctl) {
      streamCtl = null;
      setLive(false);
      if (!prompting) setTimeout(() => { if (!prompting) startStream(); }, 2000);
    }
  }

  // ---- the overview page -------------------------------------------------

  function overviewPage() {
    const state = { filter: '', sort: 'name', page: 0 };
    const cards = el('div', { class: 'cards', id: 'totals' });
    const search = el('input', { type: 'search', class: 'grow', id: 'filter', placeholder: 'Filter queues by name', 'aria-label': 'Filter queues by name' });
    const sort = el('select', { id: 'sort', 'aria-label': 'Sort by' },
      el('option', { value: 'name' }, 'by name'),
      el('option', { value: 'pending' }, 'most pending'),
      el('option', { value: 'oldest' }, 'oldest message'),
      el('option', { value: 'dead' }, 'most dead letters'));
    const tbody = el('tbody', { id: 'queue-rows' });
    const info = el('span', { class: 'muted', id: 'rows-info' });
    const prev = el('button', { type: 'button', id: 'prev-page' }, '‹ Previous');
    const next = el('button', { type: 'button', id: 'next-page' }, 'Next ›');
    const table = el('div', { class: 'table-wrap' }, el('table', { id: 'queues' },
      el('thead', null, el('tr', null,
        el('th', { scope: 'col' }, 'Queue'),
        el('th', { scope: 'col', class: 'num' }, 'Pending'),
        el('th', { scope: 'col', class: 'num' }, 'Leased'),
        el('th', { scope: 'col', class: 'num' }, 'Delayed'),
        el('th', { scope: 'col', class: 'num' }, 'Dead letters'),
        el('th', { scope: 'col', class: 'num' }, 'Oldest'),
        el('th', { scope: 'col', class: 'hide-narrow', title: 'messages in and out per second over the last minutes' }, 'In / out'))),
      tbody));
    const flow = el('div', { class: 'flow', id: 'total-traffic' });
    main.replaceChildren(el('h1', null, 'Queues'), cards, flow,
      el('div', { class: 'toolbar' }, search, sort), table,
      el('div', { class: 'pager' }, prev, next, info));

    let rows = []; // the row elements of the page shown, reused in place
    let shown = [];

    function sorted(data) {
      let list = data.queues;
      if (state.filter) {
        const f = state.filter.toLowerCase();
        list = list.filter((q) => q.name.toLowerCase().includes(f));
      }
      const by = {
        name: null,
        pending: (a, b) => b.pending - a.pending,
        oldest: (a, b) => (a.oldest_ms || Infinity) - (b.oldest_ms || Infinity),
        dead: (a, b) => (b.dead_letters || 0) - (a.dead_letters || 0),
      }[state.sort];
      return by ? list.slice().sort(by) : list;
    }

    function makeRow() {
      const link = el('a');
      const cells = [el('td', { class: 'name' }, link)];
      for (let i = 0; i < 5; i++) cells.push(el('td', { class: 'num' }));
      cells.push(el('td', { class: 'traffic hide-narrow' }));
      return { tr: el('tr', null, ...cells), link, cells, name: null, drawn: null };
    }

    // Draws a row's chart only when its numbers changed.
    function drawTraffic(r, q) {
      const t = overview.traffic;
      const key = t ? t.ends_ms[t.ends_ms.length - 1] + '|' + JSON.stringify(q.traffic || null) : 'none';
      if (r.drawn === key) return;
      r.drawn = key;
      const cell = r.cells[6];
      if (!t) { cell.replaceChildren(el('span', { class: 'muted' }, 'measuring…')); return; }
      if (!q.traffic) { cell.replaceChildren(el('span', { class: 'muted' }, 'none lately')); return; }
      cell.replaceChildren(trafficChart(t, q.traffic, 96, 22), ' ', el('span', { class: 'rate' }, rateText(t, q.traffic)));
    }

    function paint() {
      if (!overview) return;
      const list = sorted(overview);
      const pages = Math.max(1, Math.ceil(list.length / PAGE_ROWS));
      if (state.page >= pages) state.page = pages - 1;
      const start = state.page * PAGE_ROWS;
      shown = list.slice(start, start + PAGE_ROWS);
      // Grow or shrink the pool of rows; new ones go in through one fragment.
      if (rows.length < shown.length) {
        const frag = document.createDocumentFragment();
        while (rows.length < shown.length) { const r = makeRow(); rows.push(r); frag.append(r.tr); }
        tbody.append(frag);
      }
      while (rows.length > shown.length) rows.pop().tr.remove();
      const now = Date.now() + clockSkew;
      for (let i = 0; i < shown.length; i++) {
        const q = shown[i];
        const r = rows[i];
        if (r.name !== q.name) {
          r.name = q.name;
          r.link.textContent = q.name;
          r.link.href = '#/queue/' + enc(q.name);
        }
        const dead = q.dead_letters;
        const values = [num(q.pending), num(q.leased), num(q.delayed),
          dead === null ? (q.is_dead_letter_queue ? 'is a DLQ' : '–') : num(dead),
          q.oldest_ms ? age(now - q.oldest_ms) : '–'];
        for (let c = 0; c < 5; c++) {
          if (r.cells[c + 1].textContent !== values[c]) r.cells[c + 1].textContent = values[c];
        }
        r.cells[4].className = 'num' + (dead ? ' dead' : '');
        drawTraffic(r, q);
      }
      info.textContent = list.length
        ? 'queues ' + num(start + 1) + '–' + num(start + shown.length) + ' of ' + num(list.length)
        : (overview.queues.length ? 'no queue matches' : 'no queues yet (or none this key may read)');
      prev.disabled = state.page === 0;
      next.disabled = state.page >= pages - 1;
      const t = overview.totals;
      const values = [['queues', t.queues], ['pending', t.pending], ['leased', t.leased],
        ['delayed', t.delayed], ['dead letters', t.dead_letters]];
      if (cards.children.length !== values.length) {
        cards.replaceChildren(...values.map(([label]) => el('div', { class: 'card' }, el('b'), el('span', null, label))));
      }
      values.forEach(([, v], i) => { cards.children[i].firstChild.textContent = num(v); });
      const tt = overview.traffic;
      const key = tt ? tt.ends_ms[tt.ends_ms.length - 1] + '|' + JSON.stringify(overview.total_traffic) : 'none';
      if (flow.dataset.drawn !== key) {
        flow.dataset.drawn = key;
        flow.replaceChildren(el('span', { class: 'muted' }, 'All queues shown: '),
          tt ? trafficChart(tt, overview.total_traffic, 240, 40) : null, ' ',
          el('span', { class: 'rate', id: 'total-rate' }, rateText(tt, overview.total_traffic)),
          el('span', { class: 'legend muted' }, el('i', { class: 'in' }), 'in ', el('i', { class: 'out' }), 'out'));
      }
    }

    function onData() { paint(); }

    search.addEventListener('input', () => { state.filter = search.value; state.page = 0; paint(); });
    sort.addEventListener('change', () => { state.sort = sort.value; state.page = 0; paint(); });
    prev.addEventListener('click', () => { state.page--; paint(); });
    next.addEventListener('click', () => { state.page++; paint(); });
    const tick = setInterval(paint, 1000);
    listeners.add(onData);
    if (overview) paint();
    return () => { listeners.delete(onData); clearInterval(tick); };
  }

  // ---- showing a body safely -------------------------------------------

  // Text, pretty JSON, or a hex dump when the body holds control characters.
  function renderBody(body) {
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(body)) {
      const bytes = new TextEncoder().encode(body);
      const lines = [];
      for (let i = 0; i < bytes.length && i < 65536; i += 16) {
        const chunk = Array.from(bytes.slice(i, i + 16));
        lines.push(i.toString(16).padStart(8, '0') + '  ' +
          chunk.map((b) => b.toString(16).padStart(2, '0')).join(' ').padEnd(48) + '  ' +
          chunk.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join(''));
      }
      return { kind: 'binary (hex' + (bytes.length > 65536 ? ', first 64 KiB' : '') + ')', text: lines.join('\n') };
    }
    const t = body.trim();
    if (t.startsWith('{') || t.startsWith('[')) {
      try { return { kind: 'JSON', text: JSON.stringify(JSON.parse(t), null, 2) }; } catch (_) { /* text */ }
    }
    return { kind: 'text', text: body };
  }

  // ---- a queue's messages ------------------------------------------------

  // Renders a page of messages with peek (and delete, and redrive for dead letters).
  function messageTable(queue, opts) {
    const wrap = el('div');
    const tbody = el('tbody');
    const dead = opts.dead;
    const selectAll = dead ? el('input', { type: 'checkbox', 'aria-label': 'Select all on this page' }) : null;
    const head = el('tr', null,
      dead ? el('th', { scope: 'col' }, selectAll) : null,
      el('th', { scope: 'col' }, 'Id'),
      el('th', { scope: 'col', class: 'hide-narrow' }, 'Written'),
      el('th', { scope: 'col' }, 'State'),
      el('th', { scope: 'col', class: 'num' }, 'Receives'),
      dead ? el('th', { scope: 'col' }, 'Source') : null,
      dead ? el('th', { scope: 'col' }, 'Reason') : null,
      el('th', { scope: 'col' }, 'Body'),
      el('th', { scope: 'col' }, ''));
    const table = el('div', { class: 'table-wrap' }, el('table', { class: 'messages', 'data-queue': queue }, el('thead', null, head), tbody));
    const pager = el('div', { class: 'pager' });
    const order = el('select', { class: 'order', 'aria-label': 'Order of messages' },
      el('option', { value: 'oldest' }, 'oldest first'),
      el('option', { value: 'newest' }, 'newest first'));
    wrap.append(el('div', { class: 'toolbar' }, el('label', { class: 'muted' }, 'Show ', order)), table, pager);
    const cursors = [null]; // where each page starts (null: at the oldest or newest)
    let page = 0;
    let current = [];
    order.addEventListener('change', () => { cursors.length = 1; page = 0; load(); });

    async function load() {
      let data;
      const at = cursors[page];
      const from = at === null ? '' : (order.value === 'newest' ? '&before=' : '&after=') + at;
      try {
        data = await api('GET', '/v1/dashboard/queues/' + enc(queue) + '/messages?limit=' + MSG_PAGE + '&order=' + order.value + from);
      } catch (e) { fail(e, 'Queue ' + queue); return; }
      current = data.messages;
      const frag = document.createDocumentFragment();
      for (const m of data.messages) frag.append(messageRow(m));
      if (!data.messages.length) {
        frag.append(el('tr', null, el('td', { colspan: dead ? 9 : 6, class: 'muted' }, page ? 'No more messages.' : 'No messages.')));
      }
      tbody.replaceChildren(frag);
      if (selectAll) selectAll.checked = false;
      const prev = el('button', { type: 'button', disabled: page === 0, onclick: () => { page--; load(); } }, '‹ Previous');
      const next = el('button', { type: 'button', disabled: data.next === null || data.next === undefined, onclick: () => { cursors[page + 1] = data.next; page++; load(); } }, 'Next ›');
      const refresh = el('button', { type: 'button', onclick: load }, 'Refresh');
      pager.replaceChildren(prev, next, refresh, el('span', { class: 'muted' }, 'page ' + (page + 1) + ' · ' + data.messages.length + ' shown'));
      if (opts.onLoad) opts.onLoad(current);
    }

    function messageRow(m) {
      const tr = el('tr', { 'data-id': m.id });
      const peekBtn = el('button', { type: 'button', class: 'peek-btn', 'aria-expanded': 'false' }, 'Peek');
      const actions = el('td', { class: 'actions' }, peekBtn);
      if (m.state === 'visible' && !dead) {
        actions.append(' ', el('button', {
          type: 'button', class: 'danger delete-btn', onclick: async () => {
            if (!(await confirmAction('Delete message', 'Delete message ' + m.id + ' from ' + queue + '? This cannot be undone.'))) return;
            try { await api('DELETE', '/v1/dashboard/queues/' + enc(queue) + '/messages/' + m.id); setStatus('Deleted message ' + m.id + '.'); load(); } catch (e) { failAction(e, 'Delete'); }
          },
        }, 'Delete'), ' ', el('button', {
          type: 'button', class: 'move-btn', onclick: async () => {
            const to = await askText('Move message', 'Move message ' + m.id + ' from ' + queue + ' to another queue (its id and position are kept).', 'Destination queue');
            if (!to) return;
            try {
              // The id goes in as written: it does not fit a JavaScript number.
              await api('POST', '/v1/queues/' + enc(queue) + '/move', '{"to":' + JSON.stringify(to) + ',"id":' + m.id + '}');
              setStatus('Moved message ' + m.id + ' to ' + to + '.');
              load();
            } catch (e) { failAction(e, 'Move'); }
          },
        }, 'Move'));
      }
      if (dead && m.dead_letter_source) {
        actions.append(' ', el('button', {
          type: 'button', class: 'redrive-one', onclick: async () => {
            try { await redriveOne(queue, m); setStatus('Moved message ' + m.id + ' back to ' + m.dead_letter_source + '.'); load(); } catch (e) { failAction(e, 'Redrive'); }
          },
        }, 'Redrive'));
      }
      const preview = el('td', { class: 'preview' }, m.body + (m.truncated ? '…' : ''));
      const cells = [
        dead ? el('td', null, el('input', { type: 'checkbox', class: 'pick', 'aria-label': 'Select message ' + m.id })) : null,
        el('td', { class: 'preview' }, m.id),
        el('td', { class: 'hide-narrow' }, when(m.written_ms)),
        el('td', { class: 'state-' + m.state }, m.state + (m.visible_at_ms ? ' until ' + when(m.visible_at_ms).slice(11, 19) : '')),
        el('td', { class: 'num' }, m.receives),
        dead ? el('td', null, m.dead_letter_source || '–') : null,
        dead ? el('td', null, m.dead_letter_reason || '–') : null,
        preview, actions];
      tr.append(...cells.filter(Boolean));
      let open = null;
      peekBtn.addEventListener('click', async () => {
        if (open) { open.remove(); open = null; peekBtn.setAttribute('aria-expanded', 'false'); return; }
        let full;
        try { full = await api('GET', '/v1/dashboard/queues/' + enc(queue) + '/messages/' + m.id + '?seq=' + m.seq); } catch (e) { failAction(e, 'Peek'); return; }
        const shown = renderBody(full.body);
        const hdrs = Object.keys(full.headers || {}).length ? JSON.stringify(full.headers, null, 2) : null;
        open = el('tr', { class: 'peek' }, el('td', { colspan: dead ? 9 : 6 },
          el('div', { class: 'muted' }, shown.kind + ' · ' + num(full.bytes) + ' bytes' + (full.topic ? ' · topic ' + full.topic : '')),
          hdrs ? el('pre', { class: 'body headers' }, hdrs) : null,
          el('pre', { class: 'body', tabindex: '0' }, shown.text)));
        tr.after(open);
        peekBtn.setAttribute('aria-expanded', 'true');
      });
      return tr;
    }

    if (selectAll) {
      selectAll.addEventListener('change', () => {
        for (const c of tbody.querySelectorAll('input.pick')) c.checked = selectAll.checked;
      });
    }
    wrap.selected = () => {
      const ids = new Set(Array.from(tbody.querySelectorAll('tr')).filter((tr) => {
        const c = tr.querySelector('input.pick'); return c && c.checked;
      }).map((tr) => tr.getAttribute('data-id')));
      return current.filter((m) => ids.has(m.id));
    };
    wrap.reload = () => { cursors.length = 1; page = 0; return load(); };
    load();
    return wrap;
  }

  // Moves one dead letter back to the queue it came from (its id is kept).
  function redriveOne(dlq, m) {
    if (!/^[0-9]+$/.test(m.id)) throw new Error('bad id');
    // The id goes in as written: it does not fit a JavaScript number.
    const body = '{"to":' + JSON.stringify(m.dead_letter_source) + ',"id":' + m.id + '}';
    return api('POST', '/v1/queues/' + enc(dlq) + '/move', body);
  }

  function queueInfo(name) {
    return overview && overview.queues.find((q) => q.name === name);
  }

  function queuePage(name) {
    const counts = el('div', { class: 'cards', id: 'queue-counts' });
    const purge = el('button', { type: 'button', class: 'danger', id: 'purge' }, 'Purge queue…');
    const toolbar = el('div', { class: 'toolbar' }, purge);
    const settings = el('p', { class: 'muted', id: 'queue-settings' });
    const table = messageTable(name, { dead: false });
    main.replaceChildren(el('p', null, el('a', { href: '#/' }, '‹ all queues')), el('h1', null, 'Queue ', el('code', null, name)), counts, settings, toolbar, table);

    function paint() {
      const q = queueInfo(name);
      if (!q) { counts.replaceChildren(el('span', { class: 'muted' }, 'empty')); return; }
      const now = Date.now() + clockSkew;
      counts.replaceChildren(...[['pending', num(q.pending)], ['leased', num(q.leased)], ['delayed', num(q.delayed)],
        ['dead letters', q.dead_letters === null ? '–' : num(q.dead_letters)], ['oldest', q.oldest_ms ? age(now - q.oldest_ms) : '–']]
        .map(([l, v]) => el('div', { class: 'card' }, el('b', null, v), el('span', null, l))),
      el('div', { class: 'card wide', id: 'queue-traffic' }, overview.traffic ? trafficChart(overview.traffic, q.traffic, 160, 32) : null,
        el('span', null, rateText(overview.traffic, q.traffic))));
      if (q.is_dead_letter_queue && !toolbar.querySelector('#redrive-all')) {
        toolbar.append(el('a', { href: '#/dead', id: 'redrive-all' }, 'This is a dead-letter queue: redrive…'));
      }
    }
    const vis = el('input', { id: 'set-visibility', placeholder: '30s', size: 8 });
    const maxr = el('input', { id: 'set-max-receives', type: 'number', min: 1, size: 6 });
    const dlqIn = el('input', { id: 'set-dead-letter', placeholder: name + '.dlq', size: 16 });
    const edit = el('details', { id: 'settings-edit' }, el('summary', null, 'Edit settings'),
      el('form', { class: 'stack' },
        el('label', { for: 'set-visibility' }, 'Visibility timeout (e.g. 30s, 5m; empty: default)'), vis,
        el('label', { for: 'set-max-receives' }, 'Max receives (empty: unlimited)'), maxr,
        el('label', { for: 'set-dead-letter' }, 'Dead-letter queue (needed with max receives)'), dlqIn,
        el('div', null, el('button', { type: 'submit', class: 'primary' }, 'Save settings'))));
    function showConfig(c) {
      settings.textContent = 'visibility ' + (c.visibility || 'default (30s)') + ' · max receives ' + (c.max_receives || '–') +
        ' · dead-letter queue ' + (c.dead_letter || '–');
      vis.value = c.visibility || '';
      maxr.value = c.max_receives || '';
      dlqIn.value = c.dead_letter || '';
    }
    edit.querySelector('form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const body = {
        visibility: vis.value.trim() || null,
        max_receives: maxr.value ? Number(maxr.value) : null,
        dead_letter: dlqIn.value.trim() || null,
      };
      try { showConfig(await api('PUT', '/v1/queues/' + enc(name) + '/config', body)); setStatus('Saved the settings of ' + name + '.'); } catch (e) { failAction(e, 'Settings'); }
    });
    toolbar.after(edit);
    api('GET', '/v1/queues/' + enc(name) + '/config').then(showConfig).catch(() => {});
    purge.addEventListener('click', async () => {
      if (!(await confirmAction('Purge queue', 'Every message of ' + name + ' will be deleted, leased and delayed ones included.', name))) return;
      try {
        const r = await api('DELETE', '/v1/queues/' + enc(name));
        setStatus('Purged ' + name + ': ' + r.deleted + ' messages deleted.');
        table.reload();
      } catch (e) { failAction(e, 'Purge'); }
    });
    listeners.add(paint);
    paint();
    return () => listeners.delete(paint);
  }

  // ---- dead letters ----------------------------------------------------

  function deadPage() {
    const body = el('div', { id: 'dead-queues' });
    main.replaceChildren(el('h1', null, 'Dead letters'), body);
    let drawn = '';
    function paint() {
      if (!overview) return;
      const dlqs = overview.queues.filter((q) => q.is_dead_letter_queue);
      const names = dlqs.map((q) => q.name).join('\n');
      if (names === drawn) return;
      drawn = names;
      if (!dlqs.length) { body.replaceChildren(el('p', { class: 'muted' }, 'No dead-letter queue (configure one with max receives and a dead-letter queue).')); return; }
      body.replaceChildren(...dlqs.map((q) => {
        const table = messageTable(q.name, { dead: true });
        const all = el('button', {
          type: 'button', class: 'primary redrive-all', onclick: async () => {
            if (!(await confirmAction('Redrive all', 'Move every dead letter of ' + q.name + ' back to its source queue?'))) return;
            try { const r = await api('POST', '/v1/queues/' + enc(q.name) + '/redrive', {}); setStatus('Redrove ' + r.moved + ' messages from ' + q.name + '.'); table.reload(); } catch (e) { failAction(e, 'Redrive'); }
          },
        }, 'Redrive all');
        const some = el('button', {
          type: 'button', class: 'redrive-some', onclick: async () => {
            const picked = table.selected();
            if (!picked.length) { setStatus('Select messages first.'); return; }
            let moved = 0;
            try { for (const m of picked) { if (m.dead_letter_source) { await redriveOne(q.name, m); moved++; } } } catch (e) { failAction(e, 'Redrive'); }
            setStatus('Redrove ' + moved + ' selected messages from ' + q.name + '.');
            table.reload();
          },
        }, 'Redrive selected');
        return el('section', { 'data-dlq': q.name }, el('h2', null, el('a', { href: '#/queue/' + enc(q.name) }, q.name)),
          el('div', { class: 'toolbar' }, all, some), table);
      }));
    }
    listeners.add(paint);
    paint();
    return () => listeners.delete(paint);
  }

  // ---- topics ------------------------------------------------------------

  function topicsPage() {
    main.replaceChildren(el('h1', null, 'Topics and subscriptions'), el('p', { class: 'muted' }, 'Loading…'));
    function retention(t) {
      const parts = [];
      if (t.retention_count !== null) parts.push(num(t.retention_count) + ' messages');
      if (t.retention_seconds !== null) parts.push(age(t.retention_seconds * 1000));
      return parts.length ? parts.join(', ') : 'unbounded';
    }
    async function load() {
      let data;
      try { data = await api('GET', '/v1/dashboard/topics'); } catch (e) { fail(e, 'Topics'); return; }
      const topics = el('div', { class: 'table-wrap' }, el('table', { id: 'topics' },
        el('thead', null, el('tr', null, el('th', null, 'Topic'), el('th', { class: 'num' }, 'Retained'), el('th', { class: 'num' }, 'Next offset'), el('th', null, 'Retention'))),
        el('tbody', null, ...(data.topics.length ? data.topics.map((t) => el('tr', null, el('td', null, t.topic), el('td', { class: 'num' }, num(t.retained)), el('td', { class: 'num' }, num(t.next_offset)), el('td', null, retention(t))))
          : [el('tr', null, el('td', { colspan: 4, class: 'muted' }, 'No topics.'))]))));
      const subs = el('div', { class: 'table-wrap' }, el('table', { id: 'subscriptions' },
        el('thead', null, el('tr', null, el('th', null, 'Subscription'), el('th', null, 'Pattern'), el('th', { class: 'num' }, 'Lag'), el('th', null, 'Position'), el('th', null, 'Connected'), el('th', null, 'Kind'))),
        el('tbody', null, ...(data.subscriptions.length ? data.subscriptions.map((s) => el('tr', null,
          el('td', null, el('a', { href: '#/queue/' + enc(s.name) }, s.name)), el('td', null, el('code', null, s.pattern)),
          el('td', { class: 'num' }, num(s.lag)), el('td', null, s.positions.map(([t, o]) => t + '@' + o).join(', ') || '–'),
          el('td', { class: 'connected' }, (s.connected.http + s.connected.tcp)
            ? [s.connected.http ? s.connected.http + ' HTTP' : null, s.connected.tcp ? s.connected.tcp + ' TCP' : null].filter(Boolean).join(' · ')
            : 'none'),
          el('td', null, s.ephemeral ? 'ephemeral' : 'durable')))
          : [el('tr', null, el('td', { colspan: 6, class: 'muted' }, 'No subscriptions.'))]))));
      main.replaceChildren(el('h1', null, 'Topics and subscriptions'), el('h2', null, 'Topics'), topics, el('h2', null, 'Subscriptions'), subs,
        el('p', null, el('button', { type: 'button', onclick: load }, 'Refresh')));
    }
    load();
    return null;
  }

  // ---- keys (needs manage on every queue) ------------------------------

  function keysPage() {
    main.replaceChildren(el('h1', null, 'API keys'), el('p', { class: 'muted' }, 'Loading…'));
    async function load(created) {
      let data;
      try { data = await api('GET', '/v1/keys'); } catch (e) {
        if (e instanceof ApiError && e.status === 403) {
          main.replaceChildren(el('h1', null, 'API keys'), el('p', { class: 'notice', id: 'forbidden' }, 'Managing keys needs a key with manage on every queue (403).'));
          return;
        }
        if (e instanceof ApiError && e.status === 404) {
          main.replaceChildren(el('h1', null, 'API keys'), el('p', { class: 'muted' }, 'This server keeps no keys in its database.'));
          return;
        }
        fail(e, 'Keys'); return;
      }
      const name = el('input', { id: 'key-name', required: true, pattern: '[A-Za-z0-9_.\\-]+', autocomplete: 'off' });
      const allow = el('textarea', { id: 'key-allow', rows: 3, required: true, placeholder: 'orders.*=read,write' });
      const form = el('form', { class: 'stack', id: 'create-key' },
        el('label', { for: 'key-name' }, 'Name'), name,
        el('label', { for: 'key-allow' }, 'Grants, one per line: PATTERN=read,write,delete,manage'), allow,
        el('div', null, el('button', { type: 'submit', class: 'primary' }, 'Create key')));
      form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const grants = allow.value.split('\n').map((s) => s.trim()).filter(Boolean);
        try { const k = await api('POST', '/v1/keys', { name: name.value.trim(), allow: grants }); load(k); } catch (e) { failAction(e, 'Create key'); }
      });
      const rows = data.keys.map((k) => el('tr', null, el('td', null, k.name), el('td', null, k.allow.join('  ')), el('td', { class: 'hide-narrow' }, when(Math.floor(k.created_ns / 1e6))),
        el('td', null, el('button', {
          type: 'button', class: 'danger revoke', onclick: async () => {
            if (!(await confirmAction('Revoke key', 'Revoke the key ' + k.name + '? Clients using it are refused from now on.'))) return;
            try { await api('DELETE', '/v1/keys/' + enc(k.name)); setStatus('Revoked ' + k.name + '.'); load(); } catch (e) { failAction(e, 'Revoke'); }
          },
        }, 'Revoke'))));
      main.replaceChildren(el('h1', null, 'API keys'),
        created ? el('div', { class: 'notice ok', id: 'new-secret' }, 'Key ' + created.name + ' created. Its secret is shown this once:', el('code', { class: 'secret' }, created.secret)) : null,
        el('div', { class: 'table-wrap' }, el('table', { id: 'keys' }, el('thead', null, el('tr', null, el('th', null, 'Name'), el('th', null, 'Grants'), el('th', { class: 'hide-narrow' }, 'Created'), el('th', null, ''))),
          el('tbody', null, ...(rows.length ? rows : [el('tr', null, el('td', { colspan: 4, class: 'muted' }, 'No stored keys.'))])))),
        el('h2', null, 'New key'), form);
    }
    load();
    return null;
  }

  // ---- routing ----------------------------------------------------------

  let routes = 0; // the latest route() call, so that a stale one gives way
  async function route() {
    if (cleanup) { cleanup(); cleanup = null; }
    setStatus('');
    const hash = location.hash || '#/';
    const parts = hash.slice(2).split('/');
    const section = parts[0] === 'queue' ? 'overview' : (parts[0] || 'overview');
    for (const a of document.querySelectorAll('nav a')) {
      if (a.dataset.nav === section) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
    }
    const generation = ++routes;
    if (!overview) {
      // The first look tells whether a key is needed, and whether it works.
      let first;
      try { first = await api('GET', '/v1/dashboard/overview'); } catch (e) { if (generation === routes) fail(e, 'Overview'); return; }
      if (generation !== routes || prompting) return; // a newer route (or key) took over
      receive(first);
    }
    changeKey.hidden = !key();
    startStream();
    if (parts[0] === 'queue' && parts[1]) cleanup = queuePage(decodeURIComponent(parts.slice(1).join('/')));
    else if (parts[0] === 'dead') cleanup = deadPage();
    else if (parts[0] === 'topics') cleanup = topicsPage();
    else if (parts[0] === 'keys') cleanup = keysPage();
    else cleanup = overviewPage();
    main.focus({ preventScroll: true });
  }

  // The skip link moves focus, not the route (routes live in the hash).
  document.querySelector('.skip').addEventListener('click', (ev) => { ev.preventDefault(); main.focus(); });
  window.addEventListener('hashchange', () => { if (!prompting) route(); });
  route();
}());
