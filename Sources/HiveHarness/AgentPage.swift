import Foundation
import HiveTelemetry
import HiveWire

/// The agent's own page (`/agent/<n>/` through the dashboard): badges, controls, the live turn stream and
/// the inbox. The dashboard serves it sandboxed (an opaque origin), so the script uses relative URLs only,
/// sends plain-text bodies (no preflight) and escapes everything it shows.
enum AgentPage {
    /// What the page shows before its script has fetched anything: the recent stream and the inbox.
    struct Initial: Encodable {
        var events: [LiveEvent]
        /// Where the live stream goes on from (the newest event's seq, even when `events` is empty).
        var lastSeq: Int64
        var inbox: InboxView
    }

    /// The inbox panel's data (from core, through the agent's own socket), or the reason there is none.
    struct InboxView: Encodable {
        var unread = 0
        var inflight = 0
        var pendingReminders = 0
        var messages: [MessageView] = []
        var error: String?
    }

    static func html(agent: String, status s: HarnessSnapshot, initial: Initial) -> String {
        // Embedded in a script element: "<" is escaped so no text (an agent's, claude's) can close it.
        let data = (try? WireCoding.encoder().encode(initial)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        let embedded = data.replacingOccurrences(of: "<", with: "\\u003c")
        return """
            <!doctype html><html><head><meta charset="utf-8"><title>\(HTML.escape(agent))</title>
            <meta name="viewport" content="width=device-width"><style>\(css)</style></head><body>
            <header><h1>\(HTML.escape(agent))</h1> <span id="badges">\(badges(s))</span></header>
            <div id="banner"></div>
            <p class="controls"><a href="stats">stats</a> · <a href="network">network</a> ·
              <button data-post="cancel">cancel turn</button> <button data-post="compact">compact</button>
              <button data-post="new-session" data-confirm="1">new session</button>
              <span class="muted">(the model is set on the dashboard)</span> <span id="said" class="muted"></span></p>
            <form id="send"><textarea id="note" rows="2" cols="70" maxlength="900" placeholder="a note for the agent (arrives as a system message and starts a turn)" required></textarea>
              <button>send</button></form>
            <div class="cols"><section><h2>Live turns</h2><div id="stream"></div></section>
            <section><h2>Inbox <span id="counts" class="muted"></span></h2><div id="inbox"><p class="muted">loading…</p></div></section></div>
            <script id="initial" type="application/json">\(embedded)</script>
            <script>\(script)
            </script></body></html>
            """
    }

    /// The badges, as the page first shows them (the script redraws them from `state`).
    static func badges(_ s: HarnessSnapshot) -> String {
        var out = "<span class=\"badge \(HTML.escape(s.state.rawValue))\">\(HTML.escape(s.state.rawValue))</span>"
        out += " <span class=\"badge\">model \(HTML.escape(s.model ?? "?"))\(s.modelOverride != nil ? " (set here)" : "")</span>"
        if let c = s.contextTokens { out += " <span class=\"badge\">context \(c)\(s.contextWindow.map { " / \($0)" } ?? "")</span>" }
        out += " <span class=\"badge\">cost \(String(format: "%.4f", s.totalCostUSD)) USD</span>"
        if !s.permissionDenials.isEmpty {
            out += " <span class=\"badge denied\">refused: \(HTML.escape(s.permissionDenials.joined(separator: ", ")))</span>"
        }
        if let v = s.cliVersion { out += " <span class=\"badge\">claude \(HTML.escape(v))</span>" }
        return out
    }

    static let css = """
        body{font:14px system-ui,sans-serif;margin:1.2em;color:#222}h1{display:inline;margin-right:.6em}h2{font-size:1.05em}
        .badge{display:inline-block;padding:.1em .5em;border-radius:.7em;background:#ddd;font-size:.9em;margin-right:.2em}.badge.denied{background:#fc9}
        .idle{background:#cfc}.thinking,.compacting{background:#cdf}.rate_limited,.needs_login,.claude_missing,.backoff{background:#f99;color:#600}
        #banner div{background:#f99;color:#600;padding:.5em;margin:.5em 0}.muted{color:#888}
        .cols{display:flex;gap:2em;flex-wrap:wrap}.cols section:first-child{flex:3;min-width:30em}.cols section:last-child{flex:2;min-width:20em}
        .turn{border-left:3px solid #cdf;margin:.6em 0;padding-left:.6em}.ev{margin:.2em 0}.tool{color:#036}.err{color:#a00}
        pre{background:#f6f6f6;padding:.4em;white-space:pre-wrap;max-height:18em;overflow:auto;margin:.2em 0}
        details summary{cursor:pointer;color:#555}.msg{border-bottom:1px solid #eee;padding:.3em 0}button.confirm{background:#f99}
        """

    static let script = #"""
    const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
    const hhmm = t => new Date(t * 1000).toTimeString().slice(0, 5);
    const fold = (label, text) => text.length > 400
      ? `<details><summary>${esc(label)} (${text.length} chars)</summary><pre>${esc(text)}</pre></details>`
      : `<pre>${esc(text)}</pre>`;
    const stream = document.getElementById('stream');
    const turns = new Map();
    function turnBox(n) {
      const key = n ?? 'harness';
      if (!turns.has(key)) {
        const box = document.createElement('div');
        box.className = 'turn';
        box.innerHTML = n == null ? '' : `<b>turn ${n}</b>`;
        stream.prepend(box);
        turns.set(key, box);
        while (turns.size > 60) { const [k, old] = turns.entries().next().value; old.remove(); turns.delete(k); }
      }
      return turns.get(key);
    }
    function textOf(content) {
      if (content == null) return '';
      if (typeof content === 'string') return content;
      if (Array.isArray(content)) return content.map(c => c.text ?? JSON.stringify(c)).join('\n');
      return JSON.stringify(content);
    }
    function describe(e) {
      if (e.kind === 'stderr') return `<pre class="err">${esc(e.body)}</pre>`;
      let j; try { j = JSON.parse(e.body); } catch { return `<pre>${esc(e.body.slice(0, 2000))}</pre>`; }
      if (e.kind === 'harness') {
        if (j.event === 'turn_start') return `▶ message #${esc(j.message_id)} from <b>${esc(j.from)}</b>${j.unread ? ` (${esc(j.unread)} more waiting)` : ''}`
          + (j.session_action ? `<br><span class="muted">session: ${esc(j.session_action)}, ${esc(j.reason || '')}</span>` : '');
        if (j.event === 'turn_end') return `■ <b>${esc(j.result)}</b> ${esc(j.detail)} · ${Number(j.cost_usd).toFixed(4)} USD · ${esc(j.tool_calls)} tool calls · context ${esc(j.context_tokens)}`;
        if (j.event === 'state') return `<span class="muted">state: ${esc(j.state)} ${esc(j.detail)}</span>`;
        return `<span class="muted">${esc(j.event)} ${esc(j.text)}</span>`;
      }
      if (j.type === 'system') return j.subtype === 'init' ? `<span class="muted">session ${esc(j.session_id)} · ${esc(j.model)}</span>` : `<span class="muted">${esc(j.subtype)}</span>`;
      if (j.type === 'assistant') return (j.message?.content ?? []).map(b =>
        b.type === 'text' ? `<div>${esc(b.text)}</div>` :
        b.type === 'thinking' ? `<details><summary>thinking</summary><pre>${esc(b.thinking)}</pre></details>` :
        b.type === 'tool_use' ? `<div class="tool">🔧 <b>${esc(b.name)}</b> <code>${esc(JSON.stringify(b.input).slice(0, 300))}</code></div>` : '').join('');
      if (j.type === 'user') return (Array.isArray(j.message?.content) ? j.message.content : []).filter(b => b.type === 'tool_result')
        .map(b => `<div class="${b.is_error ? 'err' : ''}">↳ ${b.is_error ? 'error' : 'result'}${fold('result', textOf(b.content))}</div>`).join('');
      if (j.type === 'result') return `<span class="muted">result: ${esc(j.subtype)}${j.is_error ? ' (error)' : ''} · ${esc(j.num_turns)} steps</span>`;
      if (j.type === 'rate_limit_event') return `<span class="muted">rate limit: ${esc(j.rate_limit_info?.status)}</span>`;
      return `<span class="muted">${esc(j.type)}</span>`;
    }
    function show(e) {
      let html;
      try { html = describe(e); } catch (err) { html = `<span class="err">(could not show event ${e.seq}: ${esc(err)})</span>`; }
      if (!html) return;
      const div = document.createElement('div');
      div.className = 'ev';
      div.innerHTML = html;
      turnBox(e.turn).append(div);
    }
    const INITIAL = JSON.parse(document.getElementById('initial').textContent);
    let last = INITIAL.last_seq;
    for (const e of INITIAL.events) show(e);
    function showInbox(i) {
      document.getElementById('counts').textContent = i.error ? '' : `${i.unread} unread · ${i.inflight} in progress · ${i.pending_reminders} reminders`;
      document.getElementById('inbox').innerHTML = i.error ? `<p class="err">${esc(i.error)}</p>` : (i.messages.map(m =>
        `<div class="msg"><b>${esc(m.from)}</b> → ${esc(m.to)} <span class="muted">#${m.id} ${esc(m.state)} ${hhmm(m.sent_at)}</span>${fold('message', m.body)}</div>`).join('') || '<p class="muted">no messages</p>');
    }
    showInbox(INITIAL.inbox);
    const source = new EventSource('events/stream?after=' + last);
    source.addEventListener('live', m => { const e = JSON.parse(m.data); if (e.seq <= last) return; last = e.seq; show(e); });
    async function refresh() {
      try {
        const r = await fetch('state');
        if (!r.ok) { document.getElementById('said').textContent = r.status === 401 ? 'your session ended: open the page again from the dashboard' : 'state: HTTP ' + r.status; return; }
        const s = await r.json();
        document.getElementById('badges').innerHTML = `<span class="badge ${esc(s.state)}">${esc(s.state)}</span>
          <span class="badge">model ${esc(s.model)}${s.model_override ? ' (set here; config: ' + esc(s.config_model) + ')' : ''}</span>
          ${s.context_tokens != null ? `<span class="badge">context ${s.context_tokens}${s.context_window ? ' / ' + s.context_window + ' (' + Math.round(100 * s.context_tokens / s.context_window) + '%)' : ''}</span>` : ''}
          <span class="badge">cost ${Number(s.total_cost_usd).toFixed(4)} USD</span>
          ${s.rate_limited_until ? `<span class="badge rate_limited">rate-limited until ${hhmm(s.rate_limited_until)}</span>` : ''}
          ${(s.permission_denials || []).length ? `<span class="badge denied" title="claude was refused these tools; the agent's permissions in agent.json decide">refused: ${esc(s.permission_denials.join(', '))}</span>` : ''}
          ${s.cli_version ? `<span class="badge">claude ${esc(s.cli_version)}</span>` : ''}`;
        document.getElementById('banner').innerHTML = s.rate_limited_until ? `<div>Rate-limited until ${hhmm(s.rate_limited_until)}: messages wait.</div>` : '';
        showInbox(await (await fetch('inbox')).json());
      } catch (err) { document.getElementById('said').textContent = 'cannot reach the harness: ' + err; }
    }
    async function post(path, body, button) {
      if (button && button.dataset.confirm && !button.classList.contains('confirm')) { button.classList.add('confirm'); button.textContent = 'click again: ' + button.textContent; return; }
      if (button && button.dataset.confirm) { button.classList.remove('confirm'); button.textContent = button.textContent.replace('click again: ', ''); }
      const r = await fetch(path, {method: 'POST', body: body ?? ''});
      const j = await r.json().catch(() => ({}));
      document.getElementById('said').textContent = path + ': ' + (j.error ?? JSON.stringify(j));
      refresh();
    }
    document.querySelectorAll('button[data-post]').forEach(b => b.onclick = () => post(b.dataset.post, '', b));
    document.getElementById('send').onsubmit = ev => { ev.preventDefault(); const n = document.getElementById('note'); post('send', n.value).then(() => n.value = ''); };
    setInterval(refresh, 3000);
    """#
}
