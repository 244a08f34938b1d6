/* Shopdesk chat widget: <script src="https://HOST/widget.js" data-kb="SLUG" async></script>
 * Renders inside a shadow root (the page's CSS can't reach it, its CSS can't leak out),
 * streams answers over server-sent events, and renders the model's markdown safely:
 * text is escaped first, and only **bold**, *italic*, `code`, lists, line breaks and
 * http(s) links are turned back into elements built with the DOM API.
 * A logged-in customer: add data-customer-id="C123" data-customer-signature="HEX", the
 * signature computed by the shop's server (README, "Verified customer identity").
 * While the panel is open it polls for an agent's replies and status changes. */
(function () {
  "use strict";
  const script = document.currentScript || document.querySelector("script[data-kb]");
  if (!script) return;
  const kb = script.dataset.kb;
  const customerId = script.dataset.customerId || "";
  const customerSignature = script.dataset.customerSignature || "";
  const POLL_MS = 3000;
  const base = new URL(script.src, location.href).origin;
  const pageLang = (document.documentElement.lang || navigator.language || "en").toLowerCase();
  const lang = pageLang.startsWith("zh") ? "zh" : "en";
  const T = {
    en: {title: "Customer service", placeholder: "Ask a question…", send: "Send", person: "Talk to a person",
         open: "Chat with us", close: "Close", sources: "Sources", error: "Something went wrong. Please try again.",
         helpful: "Helpful", unhelpful: "Not helpful", waiting: "A member of our team will reply here.",
         agent: "Team member", closed: "This conversation has ended.",
         status: {waiting_for_agent: "Waiting for a member of our team…", agent: "A member of our team has joined.",
                  bot: "You're chatting with the assistant again."}},
    zh: {title: "在线客服", placeholder: "请输入您的问题…", send: "发送", person: "转人工客服",
         open: "联系客服", close: "关闭", sources: "来源", error: "出错了，请稍后再试。",
         helpful: "有帮助", unhelpful: "没帮助", waiting: "客服人员稍后会在这里回复您。",
         agent: "人工客服", closed: "本次对话已结束。",
         status: {waiting_for_agent: "正在为您转接人工客服…", agent: "人工客服已加入对话。", bot: "已切换回智能助手。"}},
  }[lang];
  const storeKey = "shopdesk:" + base + ":" + kb;

  const host = document.createElement("div");
  host.id = "shopdesk-widget";
  const root = host.attachShadow({mode: "open"});
  root.innerHTML = `
    <style>
      :host { all: initial; }
      * { box-sizing: border-box; font-family: system-ui, -apple-system, "PingFang SC", "Microsoft YaHei", sans-serif; }
      .launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483647; border: 0; border-radius: 24px;
                  padding: 12px 18px; background: #1f6feb; color: #fff; font-size: 15px; cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.2); }
      .panel { position: fixed; right: 20px; bottom: 76px; z-index: 2147483647; width: 360px; max-width: calc(100vw - 40px);
               height: 520px; max-height: calc(100vh - 100px); display: none; flex-direction: column; background: #fff;
               color: #1c1c1c; border-radius: 12px; box-shadow: 0 8px 30px rgba(0,0,0,.25); overflow: hidden; font-size: 14px; }
      .panel.open { display: flex; }
      header { display: flex; justify-content: space-between; align-items: center; padding: 10px 14px; background: #1f6feb; color: #fff; }
      header button { background: transparent; border: 0; color: #fff; font-size: 18px; cursor: pointer; }
      .log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px; }
      .msg { max-width: 85%; padding: 8px 11px; border-radius: 10px; line-height: 1.45; word-wrap: break-word; white-space: normal; }
      .customer { align-self: flex-end; background: #1f6feb; color: #fff; }
      .assistant, .agent { align-self: flex-start; background: #f1f3f5; }
      .agent { border-left: 3px solid #2da44e; }
      .who { display: block; font-size: 11px; color: #2da44e; font-weight: 600; margin-bottom: 2px; }
      .msg a { color: inherit; }
      .cite { border: 0; background: #dbe5f5; border-radius: 4px; padding: 0 4px; margin: 0 1px; cursor: pointer; font-size: 12px; }
      .quote { margin-top: 6px; padding: 6px 8px; background: #fff; border-left: 3px solid #1f6feb; font-size: 12px; }
      .sources { margin-top: 4px; font-size: 12px; color: #555; }
      .feedback { margin-top: 4px; display: flex; gap: 6px; }
      .feedback button { border: 1px solid #ccc; background: #fff; border-radius: 4px; cursor: pointer; font-size: 12px; }
      .feedback button[aria-pressed="true"] { background: #dbe5f5; }
      form { display: flex; gap: 6px; padding: 8px; border-top: 1px solid #e5e5e5; }
      textarea { flex: 1; resize: none; height: 38px; padding: 8px; border: 1px solid #ccc; border-radius: 6px; font-size: 14px; }
      form button, .person { border: 0; border-radius: 6px; background: #1f6feb; color: #fff; padding: 0 12px; cursor: pointer; }
      .person { margin: 0 8px 8px; padding: 6px; background: #fff; color: #1f6feb; border: 1px solid #1f6feb; }
      .notice { align-self: center; color: #666; font-size: 12px; }
    </style>
    <button class="launcher" part="launcher"></button>
    <div class="panel" role="dialog">
      <header><span class="title"></span><button class="close" type="button">×</button></header>
      <div class="log" aria-live="polite"></div>
      <button class="person" type="button"></button>
      <form><textarea maxlength="2000"></textarea><button type="submit"></button></form>
    </div>`;
  const $ = (selector) => root.querySelector(selector);
  $(".launcher").textContent = T.open;
  $(".title").textContent = T.title;
  $(".close").setAttribute("aria-label", T.close);
  $(".person").textContent = T.person;
  $("textarea").placeholder = T.placeholder;
  $("form button").textContent = T.send;
  const log = $(".log");

  // --- safe markdown ---------------------------------------------------------------
  function safeHref(href) {
    try {
      const url = new URL(href, location.href);
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (e) { return null; }
  }
  function inline(text, parent, citations) {
    const pattern = /(\*\*[^*]+\*\*|\*[^*]+\*|`[^`]+`|\[\d{1,2}\]|\[[^\]]+\]\([^)\s]+\))/g;
    let last = 0, match;
    while ((match = pattern.exec(text))) {
      parent.append(document.createTextNode(text.slice(last, match.index)));
      const token = match[0];
      let node;
      if (token.startsWith("**")) { node = document.createElement("strong"); node.textContent = token.slice(2, -2); }
      else if (token.startsWith("`")) { node = document.createElement("code"); node.textContent = token.slice(1, -1); }
      else if (token.startsWith("*")) { node = document.createElement("em"); node.textContent = token.slice(1, -1); }
      else if (/^\[\d{1,2}\]$/.test(token)) {
        const n = Number(token.slice(1, -1));
        const citation = (citations || []).find((c) => c.n === n);
        if (citation) {
          node = document.createElement("button");
          node.type = "button"; node.className = "cite"; node.textContent = n;
          node.title = citation.document;
          node.addEventListener("click", () => toggleQuote(node, citation));
        } else { node = document.createTextNode(token); }
      } else {
        const label = token.slice(1, token.indexOf("]("));
        const href = safeHref(token.slice(token.indexOf("](") + 2, -1));
        if (href) {
          node = document.createElement("a"); node.href = href; node.textContent = label;
          node.target = "_blank"; node.rel = "noopener noreferrer nofollow";
        } else { node = document.createTextNode(label); }
      }
      parent.append(node);
      last = match.index + token.length;
    }
    parent.append(document.createTextNode(text.slice(last)));
  }
  function render(element, text, citations) {
    element.replaceChildren();
    let list = null;
    text.split("\n").forEach((line, index) => {
      const item = /^\s*(?:[-*]|\d+\.)\s+(.*)$/.exec(line);
      if (item) {
        if (!list) { list = document.createElement("ul"); element.append(list); }
        const li = document.createElement("li"); inline(item[1], li, citations); list.append(li);
        return;
      }
      list = null;
      if (index > 0) element.append(document.createElement("br"));
      inline(line, element, citations);
    });
  }
  function toggleQuote(button, citation) {
    const bubble = button.closest(".msg");
    const existing = bubble.querySelector(`.quote[data-n="${citation.n}"]`);
    if (existing) { existing.remove(); return; }
    const quote = document.createElement("div");
    quote.className = "quote"; quote.dataset.n = citation.n;
    const source = document.createElement("strong");
    source.textContent = `[${citation.n}] ` + [citation.document, ...(citation.heading_path || [])].join(" › ");
    quote.append(source, document.createElement("br"), document.createTextNode(citation.quote));
    bubble.append(quote);
  }

  // --- conversation ------------------------------------------------------------------
  let state = JSON.parse(localStorage.getItem(storeKey) || "null");
  // A conversation belongs to the identity it was started with: another customer (or a
  // logged-out visitor) on this browser gets a new one and never sees the last one's history.
  if (state && (state.identity || "") !== customerId) { state = null; localStorage.removeItem(storeKey); }
  let lastId = 0, status = null, sending = false, polling = null;
  const seen = new Set();
  function headers() { return {"Content-Type": "application/json", "Authorization": "Bearer " + state.token}; }
  class WidgetError extends Error {}
  async function ensureConversation() {
    if (state) return;
    const body = {kb, language: lang};
    if (customerId) Object.assign(body, {customer_id: customerId, customer_signature: customerSignature});
    const response = await fetch(base + "/api/widget/conversations/", {
      method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
    });
    if (!response.ok) {
      const detail = (await response.json().catch(() => ({}))).detail;
      throw new WidgetError(detail || T.error);
    }
    state = {...(await response.json()), identity: customerId};
    localStorage.setItem(storeKey, JSON.stringify(state));
  }
  function addSources(element, citations) {
    if (!citations || !citations.length) return;
    const row = document.createElement("div"); row.className = "sources";
    row.append(document.createTextNode(T.sources + ": "));
    for (const citation of citations) {
      const button = document.createElement("button");
      button.type = "button"; button.className = "cite source"; button.textContent = citation.n;
      button.title = citation.document;
      button.addEventListener("click", () => toggleQuote(button, citation));
      row.append(button);
    }
    element.append(row);
  }
  function bubble(role, text, citations, id) {
    const element = document.createElement("div");
    element.className = "msg " + role;
    element.dataset.role = role;
    if (id) { element.dataset.id = id; seen.add(id); lastId = Math.max(lastId, id); }
    render(element, text, citations);
    if (role === "agent") {
      // A person wrote this, not the assistant: say so above the text.
      const who = document.createElement("span"); who.className = "who"; who.textContent = T.agent;
      element.prepend(who);
    }
    addSources(element, citations);
    if (role === "assistant" && id) addFeedback(element, id);
    log.append(element);
    log.scrollTop = log.scrollHeight;
    return element;
  }
  function addFeedback(element, id, current) {
    const row = document.createElement("div"); row.className = "feedback";
    for (const [value, label] of [["up", "👍"], ["down", "👎"]]) {
      const button = document.createElement("button");
      button.type = "button"; button.textContent = label;
      button.setAttribute("aria-label", value === "up" ? T.helpful : T.unhelpful);
      button.setAttribute("aria-pressed", String(current === value));
      button.dataset.feedback = value;
      button.addEventListener("click", async () => {
        const response = await fetch(`${base}/api/widget/conversations/${state.id}/messages/${id}/feedback/`, {
          method: "POST", headers: headers(), body: JSON.stringify({feedback: value}),
        });
        if (response.ok) row.querySelectorAll("button").forEach((b) => b.setAttribute("aria-pressed", String(b === button)));
      });
      row.append(button);
    }
    element.append(row);
  }
  function notice(text) {
    const element = document.createElement("div"); element.className = "notice"; element.textContent = text;
    log.append(element);
  }
  async function loadHistory() {
    if (!state) return;
    const response = await fetch(`${base}/api/widget/conversations/${state.id}/messages/`, {headers: headers()});
    if (response.status === 404) { state = null; localStorage.removeItem(storeKey); return; }
    const body = await response.json();
    log.replaceChildren();
    seen.clear(); lastId = 0; status = body.status;
    for (const message of body.messages) show(message);
  }
  function show(message) {
    if (message.role === "system") { seen.add(message.id); lastId = Math.max(lastId, message.id); notice(message.text); return; }
    const element = bubble(message.role, message.text, message.citations, message.id);
    if (message.role === "assistant") { element.querySelector(".feedback")?.remove(); addFeedback(element, message.id, message.feedback); }
  }
  function statusChanged(next) {
    if (next === status) return;
    status = next;
    if (T.status[next]) notice(T.status[next]);
  }
  // Agents' replies and status changes arrive by polling: plain GETs pass every proxy, and a
  // few seconds' delay is normal in a chat with a person.
  async function poll() {
    if (!state || sending) return;
    const conversation = state.id;
    let response;
    try {
      response = await fetch(`${base}/api/widget/conversations/${conversation}/messages/?after=${lastId}`, {headers: headers()});
    } catch (error) { return; }  // offline for a moment: the next poll tries again
    if (!state || state.id !== conversation || sending) return;  // a send started meanwhile: its stream shows it
    if (response.status === 404) {
      stopPolling(); notice(T.closed); state = null; localStorage.removeItem(storeKey); return;
    }
    if (!response.ok) return;
    const body = await response.json();
    for (const message of body.messages) {
      if (seen.has(message.id)) continue;
      if (message.role === "customer") { seen.add(message.id); lastId = Math.max(lastId, message.id); continue; }
      show(message);
    }
    statusChanged(body.status);
    log.scrollTop = log.scrollHeight;
  }
  function startPolling() { if (!polling) polling = setInterval(poll, POLL_MS); }
  function stopPolling() { clearInterval(polling); polling = null; }
  async function send(text) {
    bubble("customer", text);
    const answer = bubble("assistant", "");
    let streamed = "";
    sending = true;
    try {
      await ensureConversation();
      const response = await fetch(`${base}/api/widget/conversations/${state.id}/send/`, {
        method: "POST", headers: headers(), body: JSON.stringify({text}),
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({}));
        render(answer, body.detail || T.error); return;
      }
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const {value, done} = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, {stream: true});
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
          const data = frame.split("\n").find((line) => line.startsWith("data: "));
          if (!data) continue;
          const event = JSON.parse(data.slice(6));
          if (event.type === "delta") { streamed += event.text; render(answer, streamed); }
          else if (event.type === "message") {
            render(answer, event.text, event.citations); addSources(answer, event.citations); addFeedback(answer, event.id);
            answer.dataset.id = event.id; seen.add(event.id); lastId = Math.max(lastId, event.id);
            status = event.conversation_status;  // the answer itself says when a person was asked for
          }
          else if (event.type === "queued") { answer.remove(); notice(T.waiting); status = event.status; }
          log.scrollTop = log.scrollHeight;
        }
      }
    } catch (error) {
      render(answer, error instanceof WidgetError ? error.message : T.error);
    } finally {
      sending = false;
    }
  }

  $(".launcher").addEventListener("click", async () => {
    const panel = $(".panel");
    panel.classList.toggle("open");
    if (panel.classList.contains("open")) { await loadHistory(); $("textarea").focus(); startPolling(); }
    else stopPolling();
  });
  $(".close").addEventListener("click", () => { $(".panel").classList.remove("open"); stopPolling(); });
  $("form").addEventListener("submit", (event) => {
    event.preventDefault();
    const text = $("textarea").value.trim();
    if (!text) return;
    $("textarea").value = "";
    send(text);
  });
  $("textarea").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey) { event.preventDefault(); $("form").requestSubmit(); }
  });
  $(".person").addEventListener("click", async () => {
    try { await ensureConversation(); }
    catch (error) { notice(error instanceof WidgetError ? error.message : T.error); return; }
    const response = await fetch(`${base}/api/widget/conversations/${state.id}/handoff/`, {method: "POST", headers: headers()});
    const body = await response.json();
    status = body.status;
    if (body.message) bubble("assistant", body.message.text, [], body.message.id);
    else notice(T.waiting);
  });
  document.body.append(host);
})();
