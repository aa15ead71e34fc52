// regscribe gallery: the photo viewer's keys and zoom. Everything works
// without it: the picture is a link to the photo at 100%, and the
// Previous / Back / Next links above it do what the keys do.
"use strict";

// In a scope of its own: nothing here meets the names of the other scripts.
(() => {
  // The photo page's picture toggles between fit and 100% (a click, Enter or
  // Space on it, or Z); ← and → open the previous and next photo of the list
  // the page was opened from, Esc goes back to it (or leaves 100% first).
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
})();
