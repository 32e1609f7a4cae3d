import Foundation
import HiveWire

/// The dashboard's HTML: one page, its data embedded as JSON and kept live by server-sent events.
/// Every link is relative (it works under any base path); everything an agent wrote is escaped.
enum DashboardPage {
    static func dashboard(snapshot: SnapshotCommand.Reply, csrf: String) -> String {
        let data = (try? WireCoding.encoder().encode(snapshot)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        // Inside <script>, "</" or "<!--" would change how the element is parsed: agent text must not be able
        // to do that. \u003c is the same character to JSON.parse.
        let embedded = data.replacingOccurrences(of: "<", with: "\\u003c")
        return """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>hive</title><meta name="viewport" content="width=device-width">
        <style>\(css)</style></head>
        <body>
        <header><h1>hive</h1><span id="live" class="badge">connecting…</span> <button id="logout">log out</button></header>
        <section id="now" aria-label="now"><div class="cards">
          <div class="card"><h3>In a turn</h3><div id="now-turns"></div></div>
          <div class="card"><h3>Held</h3><div id="now-held"></div></div>
          <div class="card"><h3>Spend today</h3><div id="now-spend"></div></div>
          <div class="card"><h3>Waiting for you</h3><div id="now-waiting"></div></div>
        </div></section>
        <section id="approvals-section"><h2>Pending approvals</h2><div id="approvals"></div></section>
        <section id="questions-section"><h2>Questions</h2><div id="questions"></div></section>
        <section><h2>Agents</h2><div class="scroll"><table id="agents"></table></div></section>
        <section id="nodes-section" hidden><h2>Nodes</h2><div class="scroll"><table id="nodes"></table></div></section>
        <section><h2>Spend</h2><div class="scroll"><div id="spend"></div><table id="budgets"></table></div></section>
        <section><h2>Messages</h2>
          <form id="compose"><select id="to"></select><input id="body" placeholder="message as operator" maxlength="4096" required>
          <button>send</button></form><div id="threads"></div></section>
        <section><h2>Search</h2><form id="search"><input id="q" placeholder='words, "a phrase", prefix*, from:NAME to:NAME after:2d' maxlength="500" required>
          <select id="search-in"><option value="messages">messages</option><option value="transcripts">turn transcripts</option></select>
          <button>search</button></form><div id="results"></div></section>
        <section><h2>Reminders</h2><div class="scroll"><table id="reminders"></table></div></section>
        <section><h2>Tombstones</h2><table id="tombstones"></table></section>
        <section><h2>Forge</h2><div class="scroll"><table id="forge"><tr><td class="muted">loading…</td></tr></table></div></section>
        <section><h2>Files</h2><form id="file"><select id="file-agent"></select>
          <input id="file-path" placeholder="path in its state dir (or in /shared)" required> <button>open</button></form><pre id="file-view" hidden></pre></section>
        <script id="snapshot" type="application/json">\(embedded)</script>
        <script>
        const CSRF = \(jsString(csrf));
        \(script)
        </script>
        </body></html>
        """
    }

    static func login(error: String?) -> String {
        """
        <!doctype html><html><head><meta charset="utf-8"><title>hive: log in</title><style>\(css)</style></head>
        <body><h1>hive</h1><form method="post" action="login"><p>Operator password:
        <input type="password" name="password" autofocus required> <button>log in</button></p>
        \(error.map { "<p class=\"bad\">\($0)</p>" } ?? "")</form></body></html>
        """
    }

    static func jsString(_ s: String) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: [s])) ?? Data("[\"\"]".utf8)
        return String(decoding: data.dropFirst().dropLast(), as: UTF8.self)
    }

    // One small stylesheet: the first screen is four cards (what runs, what is held, what it costs, what
    // waits for the operator) that wrap to one column on a phone; wide tables scroll inside their section
    // instead of widening the page.
    static let css = """
    *{box-sizing:border-box}body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;padding:1em 1.5em;max-width:80em;color:#1d1d1f;background:#fafafa}
    header{display:flex;align-items:center;gap:.8em;flex-wrap:wrap}h1{margin:0;font-size:1.4em}#logout{margin-left:auto}
    h2{font-size:1.1em;margin:1.6em 0 .5em}h3{font-size:.8em;text-transform:uppercase;letter-spacing:.05em;color:#666;margin:0 0 .5em}
    .cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(15em,1fr));gap:.8em;margin-top:1em}
    .card{background:#fff;border:1px solid #e3e3e3;border-radius:.6em;padding:.8em 1em;min-width:0}
    .card .row{display:flex;justify-content:space-between;gap:.5em;padding:.15em 0;overflow-wrap:anywhere}.card .big{font-size:2em;font-weight:600}
    .card.alert{border-color:#e88;background:#fff5f5}.elapsed{font-variant-numeric:tabular-nums;color:#246}
    .scroll{overflow-x:auto;max-width:100%}
    table{border-collapse:collapse;background:#fff}td,th{padding:.3em .6em;border-bottom:1px solid #eee;text-align:left;vertical-align:top}
    .badge{display:inline-block;padding:.1em .5em;border-radius:.7em;background:#ddd;font-size:.9em;white-space:nowrap}
    .idle,.running{background:#cfc}.thinking,.compacting{background:#cdf}.stopped,.destroyed{background:#ddd}
    .crashed,.rate_limited,.over_budget,.over_disk_quota,.needs_login,.needs_billing,.claude_missing,.node_down,.bad{background:#f99;color:#600}
    .transient::after{content:"";display:inline-block;width:.7em;height:.7em;margin-left:.3em;border:2px solid #555;border-top-color:transparent;border-radius:50%;animation:spin 1s linear infinite}
    @keyframes spin{to{transform:rotate(360deg)}}
    .muted{color:#777}.msg{margin:.2em 0 .2em calc(var(--d)*1.5em);overflow-wrap:anywhere}.state{font-size:.8em;color:#666}
    .question,.approval{background:#fff;border-left:3px solid #69c;padding:.3em .8em;margin:.5em 0}
    pre{background:#f3f3f3;padding:.5em;max-height:20em;overflow:auto;white-space:pre-wrap;overflow-wrap:anywhere}button.confirm{background:#f99}
    input,select,button{font:inherit;max-width:100%}form input:not([type=radio]):not([type=checkbox]){min-width:0;width:min(30em,100%)}
    @media (max-width:40em){body{padding:.6em .8em;font-size:16px}.cards{grid-template-columns:1fr}td,th{padding:.25em .4em}}
    """

    static let script = #"""
    let S = JSON.parse(document.getElementById('snapshot').textContent);
    let seq = S.seq;
    const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
    const transients = ['spawning','starting','stopping','restarting','rebuilding','destroying'];
    const hhmm = t => new Date(t * 1000).toTimeString().slice(0, 5);
    async function act(cmd, args, button) {
      if (button && button.dataset.destructive && !button.classList.contains('confirm')) {
        button.classList.add('confirm'); button.textContent = 'click again to ' + button.textContent; return;
      }
      const r = await fetch('api/action', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-Hive-CSRF': CSRF},
                                           body: JSON.stringify(Object.assign({cmd}, args))});
      const j = await r.json().catch(() => ({}));
      if (!r.ok || j.ok === false) alert(cmd + ': ' + (j.error || r.status));
    }
    function setModel(agent) {
      const model = prompt('Model for ' + agent + ' (an alias such as opus or sonnet, or a full name; empty: its config\'s):');
      if (model !== null) act('set_model', {agent, model: model.trim()});
    }
    function raise(agent, current) {
      const usd = prompt('USD a day for ' + (agent || 'the hive') + ' (empty: clear the operator\'s cap):');
      if (usd === null) return;
      const n = Number(usd.trim());
      if (usd.trim() !== '' && !(Number.isFinite(n) && n >= 0)) { alert('not an amount of USD: ' + usd); return; }
      // The other caps in force stay: only the daily USD one changes.
      if (usd.trim() === '') act('budget', {agent, clear: true}); else act('budget', {agent, set: Object.assign({}, current, {usd_per_day: n})});
      setTimeout(() => fetch('api/snapshot').then(r => r.json()).then(j => { S.spend = j.spend; S.budgets = j.budgets; renderSpend(); }), 300);
    }
    // Cents once there are dollars; below a dollar four places, so a day of small turns does not read as nothing.
    const usd = v => { const n = Number(v || 0); return '$' + n.toFixed(n > 0 && n < 1 ? 4 : 2); };
    function renderSpend() {
      const p = (S.spend && S.spend.periods) || [];
      const names = k => [...new Set(p.flatMap(x => Object.keys(x[k] || {})))].sort();
      const row = (label, get) => `<tr><td>${label}</td>${p.map(x => `<td>${usd((get(x) || {}).usd)}</td>`).join('')}</tr>`;
      document.getElementById('spend').innerHTML = p.length === 0 ? '<p class="muted">core could not price the spend</p>' :
        `<table><tr><th></th>${p.map(x => `<th>${esc(x.period)}</th>`).join('')}</tr>${row('<b>hive</b>', x => x.hive)}` +
        names('agents').map(n => row(esc(n), x => x.agents[n])).join('') + names('models').map(n => row('<span class="muted">' + esc(n) + '</span>', x => x.models[n])).join('') +
        `</table><p class="muted">prices: ${esc(S.spend.prices)}</p>`;
      document.getElementById('budgets').innerHTML = '<tr><th>budget</th><th>caps</th><th>today</th><th>month</th><th>next turn</th><th>status</th><th></th></tr>' +
        (S.budgets || []).map(b => `<tr><td>${esc(b.scope)}</td><td class="muted">${esc(b.source)}</td><td>${usd(b.today.usd)}</td><td>${usd(b.month.usd)}</td>
          <td>${b.scope === 'hive' ? '' : usd(b.expected_turn.usd)}${Object.entries(b.windows || {}).map(([k, w]) => `<div class="muted">${esc(b.credential)} ${esc(k)} ${Math.round(w.utilization * 100)} %</div>`).join('')}</td><td><span class="badge ${b.status === 'over' ? 'bad' : ''}">${esc(b.status)}</span> <span class="muted">${esc(b.detail)}</span></td>
          <td><button onclick='raise(${esc(JSON.stringify(b.scope === 'hive' ? null : b.scope))}, ${esc(JSON.stringify(b.budget))})'>set cap</button></td></tr>`).join('');
    }
    async function search(event) {
      event.preventDefault();
      const out = document.getElementById('results');
      const where = document.getElementById('search-in').value;
      const r = await fetch('api/search?in=' + where + '&q=' + encodeURIComponent(document.getElementById('q').value));
      const j = await r.json().catch(() => ({}));
      if (!r.ok || j.ok === false) { out.innerHTML = `<p class="muted">${esc(j.error || r.status)}</p>`; return; }
      // Matches come between [ ]: shown bold, everything else escaped.
      const marked = s => esc(s).replace(/\[([^\]]*)\]/g, '<b>$1</b>');
      if (where === 'transcripts') {
        // Each hit leads to its turn on the agent's page, the matching event marked.
        out.innerHTML = (j.hits || []).map(h => `<div class="msg"><a href="agent/${esc(h.agent)}/${h.turn != null ? 'turn/' + h.turn + '?event=' + h.seq + '#e' + h.seq : ''}">${esc(h.agent)}${h.turn != null ? ' · turn ' + h.turn : ''}</a>
            <span class="state">${esc(h.kind)} ${new Date(h.at * 1000).toLocaleString()}</span><br>${marked(h.snippet)}</div>`).join('')
          || '<p class="muted">no transcript matches</p>';
        const missed = Object.entries(j.unreachable || {});
        if (missed.length) out.innerHTML += `<p class="muted">not searched: ${missed.map(([n, why]) => esc(n) + ' (' + esc(why) + ')').join(', ')}</p>`;
        return;
      }
      out.innerHTML = (j.hits || []).map(h => `<div class="msg"><a href="#msg-${h.message.id}" onclick="showMessage(${h.message.id})">#${h.message.id}</a>
          <b>${esc(h.message.from)}</b> → ${esc(h.message.to)} <span class="state">${new Date(h.message.sent_at * 1000).toLocaleString()}</span><br>${marked(h.snippet)}</div>`).join('')
        || '<p class="muted">no message matches</p>';
    }
    // A result's thread is on the page when it is among the newest messages; otherwise the result is all there is.
    function showMessage(id) {
      const el = document.getElementById('msg-' + id);
      if (el) { el.scrollIntoView(); el.style.background = '#ffd'; setTimeout(() => el.style.background = '', 2000); }
    }
    function btn(label, cmd, args, destructive) {
      return `<button ${destructive ? 'data-destructive=1' : ''} onclick='act(${esc(JSON.stringify(cmd))}, ${esc(JSON.stringify(args))}, this)'>${esc(label)}</button>`;
    }
    // How long since `t` (unix seconds), as 42s, 3m 05s or 1h 02m.
    const ago = t => { const s = Math.max(0, Math.floor(Date.now() / 1000 - t)), m = Math.floor(s / 60), h = Math.floor(m / 60);
      return h ? `${h}h ${String(m % 60).padStart(2, '0')}m` : m ? `${m}m ${String(s % 60).padStart(2, '0')}s` : `${s}s`; };
    const inTurn = ['thinking', 'compacting'];
    const held = ['rate_limited', 'over_budget', 'over_disk_quota', 'backoff', 'crashed', 'needs_login', 'needs_billing', 'claude_missing', 'disconnected'];
    // The first screen: what runs now and for how long, what is held and why, what today cost, and what
    // waits for the operator.
    function renderNow() {
      const live = S.agents.filter(a => a.state !== 'destroyed');
      const row = (left, right) => `<div class="row"><span>${left}</span><span>${right}</span></div>`;
      const turns = live.filter(a => inTurn.includes(a.state));
      document.getElementById('now-turns').innerHTML = turns.map(a => row(`<a href="agent/${esc(a.name)}/">${esc(a.name)}</a> <span class="badge ${esc(a.state)}">${esc(a.state)}</span>`,
          a.state_since ? `<span class="elapsed" data-since="${a.state_since}">${ago(a.state_since)}</span>` : '')).join('')
        || `<p class="muted">no agent is in a turn (${live.length} agents)</p>`;
      const stuck = live.filter(a => held.includes(a.state) || a.rate_limited_until);
      document.getElementById('now-held').innerHTML = stuck.map(a => row(`<a href="agent/${esc(a.name)}/">${esc(a.name)}</a> <span class="badge ${esc(a.state)}">${esc(a.state)}</span>`,
          a.state === 'rate_limited' && a.rate_limited_until ? 'until ' + hhmm(a.rate_limited_until) : '') + (a.detail ? `<div class="muted">${esc(a.detail)}</div>` : '')).join('')
        || '<p class="muted">nothing is held</p>';
      document.querySelector('#now-held').parentElement.classList.toggle('alert', stuck.length > 0);
      const today = ((S.spend && S.spend.periods) || []).find(p => p.period === 'today');
      const liveSum = live.reduce((n, a) => n + (a.today_usd || 0), 0);
      const top = [...live].filter(a => a.today_usd > 0).sort((a, b) => b.today_usd - a.today_usd).slice(0, 3);
      const hiveCap = (S.budgets || []).find(b => b.scope === 'hive');
      document.getElementById('now-spend').innerHTML = `<div class="big">${usd(Math.max(liveSum, today ? today.hive.usd : 0))}</div>` +
        top.map(a => row(esc(a.name), usd(a.today_usd))).join('') + (hiveCap && hiveCap.budget && hiveCap.budget.usd_per_day != null ? `<div class="muted">hive cap ${usd(hiveCap.budget.usd_per_day)} a day</div>` : '');
      const approvals = S.approvals.filter(a => a.state === 'pending').length;
      const questions = S.questions.filter(q => q.state === 'open' && q.to === 'operator').length;
      document.getElementById('now-waiting').innerHTML = row('<a href="#approvals-section">approvals</a>', `<b>${approvals}</b>`) +
        row('<a href="#questions-section">questions to you</a>', `<b>${questions}</b>`);
      document.querySelector('#now-waiting').parentElement.classList.toggle('alert', approvals + questions > 0);
    }
    setInterval(() => document.querySelectorAll('.elapsed').forEach(e => e.textContent = ago(Number(e.dataset.since))), 1000);
    function render() {
      const live = S.agents.filter(a => a.state !== 'destroyed');
      renderNow();
      renderSpend();
      // A hive on many hosts: each agent's node, and the nodes with their heartbeats.
      const nodes = S.nodes || [], many = nodes.length > 0;
      document.getElementById('nodes-section').hidden = !many;
      document.getElementById('nodes').innerHTML = '<tr><th>node</th><th>host</th><th>state</th><th>heartbeat</th><th>agents</th><th>load</th><th>memory</th></tr>' +
        nodes.map(n => `<tr><td>${esc(n.name)}</td><td class="muted">${esc(n.host)}</td><td><span class="badge ${n.up ? 'idle' : 'bad'}">${n.up ? 'up' : 'down'}</span></td>
          <td>${n.heartbeat_age.toFixed(1)} s ago</td><td>${n.agents}</td><td>${n.load.toFixed(2)} / ${n.cores}</td><td>${Math.round(n.memory_megabytes / 1024)} GiB</td></tr>`).join('');
      document.getElementById('agents').innerHTML = '<tr><th>agent</th>' + (many ? '<th>node</th>' : '') + '<th>state</th><th>unread</th><th>in flight</th><th>dead letters</th><th>today</th><th>cage</th><th></th></tr>' +
        live.map(a => `<tr><td><a href="agent/${esc(a.name)}/">${esc(a.name)}</a> <a class="muted" href="agent/${esc(a.name)}/stats">stats</a><div class="muted">${esc(a.description)}</div></td>${many ? `<td>${esc(a.node)}</td>` : ''}
          <td><span class="badge ${esc(a.state)} ${transients.includes(a.state) ? 'transient' : ''}">${esc(a.state)}${a.rate_limited_until ? ' until ' + hhmm(a.rate_limited_until) : ''}</span>
          <div class="muted">${esc(a.detail)}</div></td><td>${a.unread}</td><td>${a.inflight}</td>
          <td>${a.dead_letters ? `<span class="badge bad">${a.dead_letters}</span>` : 0}</td><td>${usd(a.today_usd)}</td><td class="muted">${esc(a.cage)}</td>
          <td>${btn('restart', 'restart', {name: a.name})} <button onclick='setModel(${esc(JSON.stringify(a.name))})'>model</button> ${a.state === 'stopped' ? btn('start', 'start', {name: a.name}) : btn('stop', 'stop', {name: a.name}, true)}
          ${a.name !== 'manager' ? btn('destroy', 'destroy', {name: a.name}, true) : ''}</td></tr>`).join('');
      document.getElementById('tombstones').innerHTML = S.agents.filter(a => a.state === 'destroyed')
        .map(a => `<tr><td>${esc(a.name)}</td><td>${btn('revive', 'revive', {name: a.name})} ${btn('purge', 'destroy', {name: a.name, purge: true}, true)}</td></tr>`).join('') || '<tr><td class="muted">none</td></tr>';
      const open = S.approvals.filter(a => a.state === 'pending' || a.state === 'approved');
      document.getElementById('approvals').innerHTML = open.map(a => `<div class="approval"><b>#${a.id} ${esc(a.kind)} ${esc(a.agent)}</b>
          <span class="badge">${esc(a.state)}</span> <span class="muted">${esc(a.description)}</span>
          ${a.diff ? `<pre>${esc(a.diff)}</pre>` : ''}
          ${a.state === 'pending' ? `${btn('approve', 'approve', {id: a.id})} <input id="note-${a.id}" placeholder="note for the manager">
          <button data-destructive=1 onclick='act("deny", {id: ${a.id}, note: document.getElementById("note-${a.id}").value || null}, this)'>deny</button>` : ''}</div>`).join('')
        || '<p class="muted">nothing waits for you</p>';
      renderQuestions();
      const byId = new Map(S.messages.map(m => [m.id, m]));
      const depth = m => { let d = 0, p = m; while (p.in_reply_to && byId.has(p.in_reply_to) && d < 8) { p = byId.get(p.in_reply_to); d++; } return d; };
      const root = m => { let p = m, n = 0; while (p.in_reply_to && byId.has(p.in_reply_to) && n++ < 8) p = byId.get(p.in_reply_to); return p.id; };
      const threads = new Map();
      [...S.messages].sort((a, b) => a.id - b.id).forEach(m => { const r = root(m); if (!threads.has(r)) threads.set(r, []); threads.get(r).push(m); });
      document.getElementById('threads').innerHTML = [...threads.values()].reverse().slice(0, 60).map(t => '<div class="thread">' + t.map(m =>
        `<div class="msg" id="msg-${m.id}" style="--d:${depth(m)}"><b>${esc(m.from)}</b> → ${esc(m.to)} <span class="state">#${m.id} ${esc(m.state)}${m.redelivered ? ', redelivered' : ''}${m.state === 'dead' ? ' (dead-lettered: ' + esc(m.dead_reason) + ')' : ''}</span><br>${esc(m.body)}</div>`).join('') + '</div><hr>').join('');
      const to = document.getElementById('to'), chosen = to.value;
      to.innerHTML = ['manager', '*', ...live.map(a => a.name).filter(n => n !== 'manager')].map(n => `<option>${esc(n)}</option>`).join('');
      if (chosen) to.value = chosen;
      const fa = document.getElementById('file-agent'), faChosen = fa.value;
      fa.innerHTML = '<option value="">/shared</option>' + live.map(a => `<option>${esc(a.name)}</option>`).join('');
      if (faChosen !== undefined) fa.value = faChosen;
      document.getElementById('reminders').innerHTML = S.reminders.map(r => `<tr><td>#${r.id}</td><td>${esc(r.agent)}</td><td>${new Date(r.due_at * 1000).toLocaleString()}</td>
          <td>${esc(r.body)}</td><td>${btn('cancel', 'cancel_reminder', {id: r.id}, true)}</td></tr>`).join('') || '<tr><td class="muted">none</td></tr>';
    }
    // Redrawn only when the questions change, so an answer being typed survives other live updates.
    let shownQuestions = null;
    function renderQuestions() {
      const key = JSON.stringify(S.questions);
      if (key === shownQuestions) return;
      shownQuestions = key;
      // What the operator has typed or picked so far survives the redraw.
      const typed = new Map([...document.querySelectorAll('form.question')].map(f => [f.dataset.id, {
        text: f.querySelector('input[name=text]').value,
        picked: [...f.querySelectorAll('input:checked')].map(i => i.value)}]));
      const open = S.questions.filter(q => q.state === 'open'), closed = S.questions.filter(q => q.state !== 'open');
      document.getElementById('questions').innerHTML = open.map(q => {
        const head = `<b>#${q.id} ${esc(q.asker)}</b> asks ${q.to === 'operator' ? 'you' : esc(q.to)}
          <span class="muted">(expires ${new Date(q.expires_at * 1000).toLocaleString()})</span><p>${esc(q.question)}</p>`;
        if (q.to !== 'operator') return `<div class="question" id="q-${q.id}">${head}<p class="muted">waiting for ${esc(q.to)} to answer</p></div>`;
        const kind = q.multi ? 'checkbox' : 'radio';
        const opts = q.options.map((o, i) => `<label><input type="${kind}" name="q-${q.id}" value="${esc(o)}"> ${esc(o)}</label>`).join(' ');
        return `<form class="question" id="q-${q.id}" data-id="${q.id}">${head}${opts ? '<p>' + opts + '</p>' : ''}
          <input name="text" placeholder="${q.options.length ? 'note (optional)' : 'your answer'}" maxlength="1500" ${q.options.length ? '' : 'required'}>
          <button>answer</button></form>`;
      }).join('') || '<p class="muted">no open questions</p>';
      document.getElementById('questions').innerHTML += closed.map(q => `<div class="muted">#${q.id} ${esc(q.asker)} → ${esc(q.to)}: ${esc(q.question)} —
          ${q.state === 'answered' ? 'answered' + (q.choices.length ? ' ' + esc(q.choices.join(', ')) : '') + (q.answer ? ': ' + esc(q.answer) : '') : 'expired'}</div>`).join('');
      document.querySelectorAll('form.question').forEach(f => {
        const was = typed.get(f.dataset.id);
        if (!was) return;
        f.querySelector('input[name=text]').value = was.text;
        f.querySelectorAll('input[type=radio],input[type=checkbox]').forEach(i => i.checked = was.picked.includes(i.value));
      });
      document.querySelectorAll('form.question').forEach(f => f.onsubmit = ev => {
        ev.preventDefault();
        const choices = [...f.querySelectorAll('input[type=radio]:checked,input[type=checkbox]:checked')].map(i => i.value);
        const text = f.querySelector('input[name=text]').value;
        act('answer', {id: Number(f.dataset.id), choices: choices.length ? choices : null, answer: text || null});
      });
    }
    function apply(e) {
      if (e.kind === 'message' || e.kind === 'message_state') {
        const i = S.messages.findIndex(m => m.id === e.message.id);
        if (i >= 0) S.messages[i] = e.message; else S.messages.unshift(e.message);
        S.messages = S.messages.slice(0, 500);
      } else if (e.kind === 'agents') S.agents = e.agents;
      else if (e.kind === 'approvals') S.approvals = e.approvals;
      else if (e.kind === 'reminders') S.reminders = e.reminders;
      else if (e.kind === 'questions') S.questions = e.questions;
    }
    fetch('api/forge').then(r => r.json()).then(j => {
      document.getElementById('forge').innerHTML = j.ok === false ? `<tr><td class="muted">${esc(j.error)}</td></tr>` :
        (j.repos || []).map(r => `<tr><td><a href="forge/${esc(r.full_name)}.git">${esc(r.full_name)}</a></td><td class="muted">${esc(r.description)}</td>
          <td>${r.last_commit ? esc(r.last_commit.slice(0, 10)) + ' ' + esc(r.last_message) + ' <span class="muted">' + new Date(r.last_commit_at * 1000).toLocaleString() + '</span>' : '<span class="muted">empty</span>'}</td></tr>`).join('')
        || '<tr><td class="muted">no repos yet</td></tr>';
    }).catch(() => {});
    document.getElementById('file').onsubmit = async ev => {
      ev.preventDefault();
      const agent = document.getElementById('file-agent').value, path = document.getElementById('file-path').value;
      const r = await fetch('api/file?agent=' + encodeURIComponent(agent) + '&path=' + encodeURIComponent(path));
      const j = await r.json().catch(() => ({}));
      const view = document.getElementById('file-view');
      view.hidden = false;
      view.textContent = j.ok === false ? 'cannot open: ' + j.error : (j.text ?? '(binary file, ' + j.size + ' bytes)');
    };
    document.getElementById('logout').onclick = () =>
      fetch('logout', {method: 'POST', headers: {'X-Hive-CSRF': CSRF}}).then(() => location.href = 'login');
    document.getElementById('search').onsubmit = search;
    document.getElementById('compose').onsubmit = ev => {
      ev.preventDefault();
      const body = document.getElementById('body');
      act('send', {to: document.getElementById('to').value, body: body.value}).then(() => body.value = '');
    };
    render();
    const source = new EventSource('events?after=' + seq);
    source.onopen = () => { document.getElementById('live').textContent = 'live'; };
    source.onerror = () => { document.getElementById('live').textContent = 'reconnecting…'; };
    source.onmessage = m => { const e = JSON.parse(m.data); if (e.seq <= seq) return; seq = e.seq; apply(e); render(); };
    source.addEventListener('reset', () => location.reload());
    """#
}
