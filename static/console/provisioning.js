// Follows a tenant's provisioning over the websocket and updates the step list in place.
(function () {
  const card = document.getElementById("provisioning");
  if (!card) return;
  const live = document.getElementById("live");
  const outcome = document.getElementById("outcome");
  const retry = document.getElementById("retry-form");
  const firstKey = document.getElementById("first-key-form");

  function setStep(step, state, detail) {
    const item = document.getElementById("step-" + step);
    if (!item) return;
    item.className = "step-" + state;
    item.querySelector(".state").textContent = state;
    const text = item.querySelector(".detail");
    text.textContent = detail || "";
    text.classList.toggle("error", state === "failed");
  }

  // The tenant's status badge in the page head follows the run (it said "pending" after it).
  function setBadge(status) {
    const badge = document.querySelector(".page-head .status");
    if (!badge) return;
    badge.textContent = status;
    badge.className = "status status-" + status;
  }

  function handle(event) {
    if (event.snapshot) {
      event.snapshot.forEach((s) => setStep(s.step, s.state, s.detail));
      if (retry) retry.hidden = !event.snapshot.some((s) => s.state === "failed");
      if (firstKey && event.first_key) firstKey.hidden = false;
      return;
    }
    if (event.step) {
      setStep(event.step, event.state, event.detail);
      if (retry) retry.hidden = event.state !== "failed";
      if (event.state === "running") outcome.textContent = "";
    }
    if (event.finished && event.status) setBadge(event.status);
    if (event.finished === "failed") {
      outcome.textContent = "Provisioning stopped: " + event.detail;
      outcome.className = "error";
      if (retry) retry.hidden = false;
    }
    if (event.finished === "done") {
      outcome.textContent = "Provisioned.";
      outcome.className = "";
      if (retry) retry.hidden = true;
      if (firstKey && event.first_key) firstKey.hidden = false;
    }
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + card.dataset.socket);
    socket.onopen = () => { live.textContent = "live"; };
    socket.onmessage = (message) => handle(JSON.parse(message.data));
    socket.onclose = (event) => {
      if (event.code === 4403) { live.textContent = "not allowed"; return; }
      live.textContent = "reconnecting…";
      setTimeout(connect, 2000);
    };
  }
  connect();

  // Retry without leaving the page: the socket shows the new run.
  if (retry) {
    retry.addEventListener("submit", (event) => {
      event.preventDefault();
      fetch(retry.action, { method: "POST", body: new FormData(retry), headers: { "HX-Request": "true" } });
      retry.hidden = true;
      outcome.textContent = "Retrying…";
      outcome.className = "muted";
    });
  }
})();
