// The queue page's live part: every few seconds, ask /console/api/queue/ for the rows of this page (same
// filters), the counts per status and the tickets opened since the last look; re-draw the table, and
// announce new tickets with a toast (and a desktop notification when the agent allowed them).
(function () {
  "use strict";
  const script = document.currentScript;
  const api = script.dataset.api;
  const query = script.dataset.query;
  const pollMs = Number(script.dataset.pollMs) || 3000;
  let latest = Number(script.dataset.latest) || 0;
  const body = document.querySelector("#queue tbody");
  const toasts = document.getElementById("toasts");
  const notifyButton = document.getElementById("notify-button");

  function cell(text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text instanceof Node) td.append(text); else td.textContent = text == null ? "" : text;
    return td;
  }

  function badge(value) {
    const span = document.createElement("span");
    span.className = "badge " + value;
    span.textContent = value;
    return span;
  }

  function when(iso) {
    const time = document.createElement("time");
    time.dateTime = iso;
    const date = new Date(iso);
    time.textContent = date.toISOString().slice(0, 16).replace("T", " ");
    return time;
  }

  function row(ticket) {
    const tr = document.createElement("tr");
    tr.dataset.number = ticket.number;
    if (ticket.sla_breached) tr.className = "breach";
    const link = document.createElement("a");
    link.href = ticket.url;
    link.textContent = ticket.number;
    const sla = document.createElement("span");
    sla.append(when(ticket.sla_due_at));
    if (ticket.sla_breached) sla.append(" · overdue");
    tr.append(
      cell(link), cell(ticket.reason_label), cell(badge(ticket.priority)), cell(badge(ticket.status)),
      cell(ticket.assignee || "unassigned"), cell([ticket.customer, ticket.order].filter(Boolean).join(" ")),
      cell(sla, "sla"), cell(when(ticket.created_at)),
    );
    return tr;
  }

  function toast(ticket) {
    const box = document.createElement("div");
    box.className = "toast";
    box.setAttribute("role", "status");
    const link = document.createElement("a");
    link.href = ticket.url;
    link.textContent = ticket.number;
    box.append("New ticket ", link, ": " + ticket.reason_label);
    toasts.append(box);
    setTimeout(() => box.remove(), 15000);
    if ("Notification" in window && Notification.permission === "granted") {
      const note = new Notification("New ticket " + ticket.number, {body: ticket.reason_label, tag: ticket.number});
      note.onclick = () => { window.focus(); location.href = ticket.url; };
    }
  }

  async function poll() {
    let response;
    try {
      response = await fetch(`${api}?${query}&since=${latest}`, {headers: {Accept: "application/json"}});
    } catch (error) {
      return;  // offline for a moment: the next poll tries again
    }
    if (response.status === 401) { location.reload(); return; }  // signed out: the page sends to sign-in
    if (!response.ok) return;
    const data = await response.json();
    latest = Math.max(latest, data.latest_id);
    for (const [status, count] of Object.entries(data.counts)) {
      const span = document.querySelector(`[data-count="${status}"]`);
      if (span) span.textContent = count;
    }
    document.title = `Queue (${data.counts.active}) · Shopdesk`;
    if (data.tickets.length) {
      body.replaceChildren(...data.tickets.map(row));
    } else {
      const tr = document.createElement("tr");
      tr.className = "empty";
      const td = cell("No tickets here.", "muted");
      td.colSpan = 8;
      tr.append(td);
      body.replaceChildren(tr);
    }
    data.opened.forEach(toast);
  }

  if ("Notification" in window && Notification.permission === "default") {
    notifyButton.hidden = false;
    notifyButton.addEventListener("click", async () => {
      await Notification.requestPermission();
      notifyButton.hidden = true;
    });
  }
  setInterval(poll, pollMs);
})();
