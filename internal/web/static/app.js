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
