// regscribe gallery: copy buttons and a reprocess run's live progress.
// Everything works without it; it only saves typing and reloading.
"use strict";

document.addEventListener("click", (ev) => {
  const button = ev.target.closest("button[data-copy]");
  if (!button) return;
  const field = document.getElementById(button.dataset.copy);
  if (!field) return;
  const done = () => {
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1500);
  };
  const text = field.textContent;
  const select = () => { window.getSelection().selectAllChildren(field); };
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(done, select);
  } else {
    select();
    if (document.execCommand("copy")) done();
  }
});

const run = document.getElementById("run");
if (run && run.dataset.events && window.EventSource) {
  const source = new EventSource(run.dataset.events);
  const phase = document.getElementById("phase");
  const progress = document.getElementById("progress");
  const progressText = document.getElementById("progress-text");
  const error = document.getElementById("run-error");
  const failures = document.getElementById("failures");
  const noFailures = document.getElementById("no-failures");
  source.addEventListener("state", (ev) => {
    const s = JSON.parse(ev.data);
    phase.textContent = s.phase;
    phase.className = "badge " + s.phase;
    progress.max = Math.max(s.queued, 1);
    progress.value = s.done;
    progressText.textContent = s.done + " of " + s.queued + " photos done";
    for (const row of s.rows) {
      const cell = run.querySelector('[data-count="' + row.Key + '"]');
      if (cell) cell.textContent = row.Count;
    }
    if (s.error) { error.textContent = s.error; error.hidden = false; }
    failures.replaceChildren(...s.failures.map((f) => {
      const li = document.createElement("li");
      li.className = "job";
      const div = document.createElement("div");
      div.className = "job-main";
      const ref = document.createElement("p");
      ref.className = "ref";
      const code = document.createElement("code");
      code.textContent = f.ref;
      ref.append(code);
      const reason = document.createElement("p");
      reason.className = "reason";
      reason.textContent = f.reason;
      div.append(ref, reason);
      li.append(div);
      return li;
    }));
    noFailures.hidden = s.failures.length > 0;
    noFailures.textContent = s.phase === "done" || s.phase === "failed" ? "None." : "None so far.";
    run.dataset.phase = s.phase;
  });
  source.addEventListener("end", () => source.close());
}

// ---- Photo viewer ---------------------------------------------------------
// The photo page's picture toggles between fit and 100% (a click, Enter or
// Space on it, or Z); ← and → open the previous and next photo of the list
// the page was opened from, Esc goes back to it (or leaves 100% first).
// Without script the picture is a link to the photo at 100%, and the
// Previous / Back / Next links above it do the same as the keys.
const viewer = document.getElementById("viewer");
if (viewer) {
  const zoom = document.getElementById("zoom");
  const picture = document.getElementById("picture");
  zoom.setAttribute("role", "button");
  zoom.setAttribute("aria-pressed", "false");
  const zoomed = () => viewer.classList.contains("zoomed");
  // at is where to centre the photo at 100%, as fractions of its size.
  const toggle = (at) => {
    const on = !zoomed();
    viewer.classList.toggle("zoomed", on);
    zoom.setAttribute("aria-pressed", String(on));
    if (!on) return;
    const centre = () => {
      zoom.scrollLeft = at.x * zoom.scrollWidth - zoom.clientWidth / 2;
      zoom.scrollTop = at.y * zoom.scrollHeight - zoom.clientHeight / 2;
    };
    if (picture.getAttribute("src") !== picture.dataset.full) {
      picture.addEventListener("load", centre, { once: true });
      picture.src = picture.dataset.full;
    } else {
      centre();
    }
  };
  const middle = { x: 0.5, y: 0.5 };
  zoom.addEventListener("click", (ev) => {
    ev.preventDefault();
    const box = picture.getBoundingClientRect();
    const inside = ev.detail > 0 && box.width > 0 && box.height > 0;
    toggle(inside ? { x: (ev.clientX - box.left) / box.width, y: (ev.clientY - box.top) / box.height } : middle);
  });
  zoom.addEventListener("keydown", (ev) => {
    if (ev.key === " ") { ev.preventDefault(); toggle(middle); }
  });
  document.addEventListener("keydown", (ev) => {
    if (ev.defaultPrevented || ev.altKey || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    if (ev.target.closest && ev.target.closest("input, textarea, select, summary, [contenteditable]")) return;
    const go = (id) => {
      const link = document.getElementById(id);
      if (!link) return;
      ev.preventDefault();
      window.location.assign(link.href);
    };
    switch (ev.key) {
      case "ArrowLeft": if (!zoomed()) go("prev"); break;
      case "ArrowRight": if (!zoomed()) go("next"); break;
      case "Escape":
        if (zoomed()) { ev.preventDefault(); toggle(middle); } else go("back");
        break;
      case "z": case "Z": ev.preventDefault(); toggle(middle); break;
    }
  });
}

// Back from a photo page (Esc, or its Back link): the card of that photo
// in the list takes the focus, so the keyboard goes on from there.
// (After the page loaded: the browser's own scroll to the fragment comes
// first and would take the focus back.)
window.addEventListener("load", () => {
  if (!/^#at-\d+$/.test(window.location.hash)) return;
  const card = document.getElementById(window.location.hash.slice(1));
  const link = card && card.querySelector("a");
  if (link) link.focus();
});
