// The ticket page's live part: every few seconds, fetch the conversation's messages since the last one
// shown and append them (the customer writing while the agent reads), and keep the statuses current.
(function () {
  "use strict";
  const script = document.currentScript;
  const api = script.dataset.api;
  const pollMs = Number(script.dataset.pollMs) || 3000;
  let after = Number(script.dataset.after) || 0;
  const transcript = document.getElementById("transcript");

  function append(message) {
    if (transcript.querySelector(`[data-id="${message.id}"]`)) return;
    document.getElementById("no-messages")?.remove();
    const box = document.createElement("div");
    box.className = "msg " + message.role;
    box.dataset.id = message.id;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = message.role + " · " + new Date(message.created_at).toLocaleTimeString();
    box.append(who, message.text);
    transcript.append(box);
  }

  async function poll() {
    let response;
    try {
      response = await fetch(`${api}?after=${after}`, {headers: {Accept: "application/json"}});
    } catch (error) {
      return;
    }
    if (!response.ok) return;
    const data = await response.json();
    const atBottom = transcript.scrollTop + transcript.clientHeight >= transcript.scrollHeight - 20;
    for (const message of data.messages) {
      append(message);
      after = Math.max(after, message.id);
    }
    if (data.messages.length && atBottom) transcript.scrollTop = transcript.scrollHeight;
    document.getElementById("ticket-status").textContent = data.ticket_status;
    document.getElementById("ticket-assignee").textContent = data.assignee || "unassigned";
    const conversation = document.getElementById("conversation-status");
    if (conversation && data.conversation_status) conversation.textContent = data.conversation_status;
  }

  transcript.scrollTop = transcript.scrollHeight;
  setInterval(poll, pollMs);
})();
