// Source viewer: when the page picture cannot be drawn (a damaged file, say), say so in
// words instead of leaving a broken image.
(function () {
  "use strict";

  function failed(img) {
    var note = document.querySelector("[data-testid=page-failed]");
    img.hidden = true;
    if (note) { note.hidden = false; }
  }

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    var img = document.querySelector("[data-testid=page-image]");
    if (!img) { return; }
    if (img.complete && img.naturalWidth === 0) { failed(img); return; }
    img.addEventListener("error", function () { failed(img); });
  });
})();
