// The topic viewer: one websocket per page; browse (with progress) or live tail. The page's URL
// holds the state (the form is submitted with GET), so a link reopens the same view.
(function () {
  "use strict";
  const MAX_ROWS = 2000;

  function start() {
    const form = document.getElementById("viewer-form");
    if (!form) return;
    const field = (name) => form.elements.namedItem(name).value;
    const state = {
      topic: field("topic"), mode: field("mode"), partition: field("partition"),
      start: field("start"), limit: field("limit"), q: field("q"), cel: field("cel"),
    };
    const tbody = document.querySelector("#messages tbody");
    const status = document.getElementById("status");
    const missed = document.getElementById("missed");
    const filterError = document.getElementById("filter-error");
    const pause = document.getElementById("pause");
    const more = document.getElementById("more");
    const exportLink = document.getElementById("export");
    let next = null;
    let paused = false;
    let received = 0;

    if (exportLink) {
      const params = new URLSearchParams({
        topic: state.topic, partition: state.partition, start: state.start === "newest" ? "oldest" : state.start,
        q: state.q, cel: state.cel, limit: state.limit,
      });
      exportLink.href = form.dataset.exportUrl + "?" + params.toString();
      exportLink.hidden = false;
    }

    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + form.dataset.ws);

    function send(message) { socket.send(JSON.stringify(message)); }

    function cell(text, className) {
      const td = document.createElement("td");
      td.textContent = text;
      if (className) td.className = className;
      return td;
    }

    function addRow(m, atTop) {
      const tr = document.createElement("tr");
      tr.dataset.partition = m.partition;
      tr.dataset.offset = m.offset;
      const value = preview(m.value);
      tr.append(
        cell(String(m.partition)), cell(String(m.offset)),
        cell(new Date(m.timestamp).toISOString(), "time"), cell(m.key === null ? "" : m.key, "key"),
        cell(value, "value"),
      );
      if (m.dlq_reason) tr.title = "dead-letter reason: " + m.dlq_reason;
      tr.addEventListener("click", () => showDetail(m));
      if (atTop) tbody.prepend(tr);
      else tbody.append(tr);
      while (tbody.rows.length > MAX_ROWS) tbody.deleteRow(atTop ? -1 : 0);
    }

    // An event's envelope starts with its id: the preview shows its type and data instead.
    function preview(value) {
      if (typeof value === "string") return value;
      if (value && typeof value === "object" && "type" in value && "data" in value) {
        return value.type + " " + JSON.stringify(value.data);
      }
      return JSON.stringify(value);
    }

    function showDetail(m) {
      const detail = document.getElementById("detail");
      detail.hidden = false;
      document.getElementById("detail-close").hidden = false;
      const params = new URLSearchParams({ topic: state.topic, partition: m.partition, offset: m.offset });
      window.htmx.ajax("GET", form.dataset.detailUrl + "?" + params.toString(), { target: "#detail" });
    }

    function showError(message) {
      filterError.textContent = message.field + ": " + message.message;
      filterError.hidden = false;
      status.textContent = "Error";
    }

    function celNote(message) {
      return message.cel_errors ? " · CEL errors: " + message.cel_errors + " (" + message.cel_last_error + ")" : "";
    }

    socket.addEventListener("open", () => {
      status.textContent = state.mode === "live" ? "Subscribing…" : "Scanning…";
      const request = { action: state.mode, topic: state.topic, partition: state.partition, q: state.q, cel: state.cel };
      if (state.mode === "browse") { request.start = state.start; request.limit = state.limit; }
      send(request);
    });
    socket.addEventListener("close", () => { status.textContent = "Disconnected"; });
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(event.data);
      switch (message.type) {
        case "error": showError(message); break;
        case "progress":
          status.textContent = "Scanning… " + message.scanned + " scanned, " + message.matched + " matched";
          break;
        case "results": {
          // A `before:` cursor pages back in time: those rows go above the ones shown.
          const older = message.next.startsWith("before:");
          if (older) message.messages.slice().reverse().forEach((m) => addRow(m, true));
          else message.messages.forEach((m) => addRow(m, false));
          next = message.next;
          more.hidden = older && message.done;
          more.textContent = older ? "Load older" : "Load more";
          status.textContent = message.scanned + " scanned, " + message.matched + " matched" +
            (message.done ? " · end of topic" : " · stopped: " + message.stopped) + celNote(message);
          break;
        }
        case "live":
          pause.hidden = false;
          missed.hidden = false;
          status.textContent = "Live: waiting for messages";
          break;
        case "batch":
          // Live: newest first, at the top, where the eye is.
          message.messages.forEach((m) => addRow(m, true));
          received += message.messages.length;
          missed.querySelector("b").textContent = String(message.missed);
          missed.classList.toggle("zero", message.missed === 0);
          status.textContent = "Live: " + received + " received" + celNote(message);
          break;
        case "paused": status.textContent = "Paused"; break;
        case "resumed": status.textContent = "Live: " + received + " received"; break;
      }
    });

    document.getElementById("detail-close").addEventListener("click", () => {
      document.getElementById("detail").hidden = true;
      document.getElementById("detail-close").hidden = true;
    });
    pause.addEventListener("click", () => {
      paused = !paused;
      send({ action: paused ? "pause" : "resume" });
      pause.textContent = paused ? "Resume" : "Pause";
    });
    more.addEventListener("click", () => {
      if (!next) return;
      status.textContent = "Scanning…";
      send({ action: "browse", topic: state.topic, partition: state.partition, start: next,
             limit: state.limit, q: state.q, cel: state.cel });
    });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
