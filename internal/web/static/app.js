// regscribe gallery: copy buttons, a reprocess run's live progress, and the
// grid's endless scrolling and live photo states. Everything works without
// it; it only saves typing, clicking "More photos" and reloading.
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

// The grid: load the next page as the person scrolls near the end (the
// "More photos" link is the same page without script), and while photos
// are being described, show their new state as it comes.
const tiles = document.getElementById("tiles");
if (tiles && window.fetch && window.DOMParser) {
  const readPage = async (url) => {
    const res = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!res.ok) throw new Error("HTTP " + res.status);
    return new DOMParser().parseFromString(await res.text(), "text/html");
  };
  let extended = false; // pages were added below the first
  const more = document.querySelector("a[data-more]");
  if (more && window.IntersectionObserver) {
    let busy = false;
    const pager = more.closest("nav");
    const observer = new IntersectionObserver(async (entries) => {
      if (busy || !entries.some((e) => e.isIntersecting)) return;
      busy = true;
      try {
        const doc = await readPage(more.href);
        const next = doc.getElementById("tiles");
        if (next) tiles.append(...[...next.children].map((n) => document.adoptNode(n)));
        extended = true;
        const nextMore = doc.querySelector("a[data-more]");
        if (nextMore) {
          more.href = nextMore.getAttribute("href");
        } else {
          observer.disconnect();
          pager.hidden = true;
        }
      } catch (err) {
        // The link stays: a click loads the page the plain way.
      }
      busy = false;
    }, { rootMargin: "1200px 0px" });
    observer.observe(more);
  }
  const pending = () => tiles.querySelector('.tile[data-state="queued"]') !== null;
  const refresh = async () => {
    if (extended || document.hidden || !pending()) return;
    try {
      const doc = await readPage(location.href);
      const fresh = doc.getElementById("tiles");
      if (fresh && !extended) {
        tiles.replaceChildren(...[...fresh.children].map((n) => document.adoptNode(n)));
        const lead = doc.querySelector(".photos > .lead");
        const here = document.querySelector(".photos > .lead");
        if (lead && here) here.replaceWith(document.adoptNode(lead));
      }
    } catch (err) {
      // Try again at the next tick.
    }
  };
  setInterval(refresh, 2000);
}

// A photo's page while it is being described: show the description once
// it is written.
if (document.querySelector('.waiting[data-state="queued"]')) {
  setInterval(() => { if (!document.hidden) location.reload(); }, 3000);
}
