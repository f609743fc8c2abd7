// Result page: Copy buttons (the clipboard API, with a fallback for browsers or pages
// where it is not allowed) and announcing the job's status to screen readers as the
// live part of the page is refreshed by htmx. The copy buttons stay hidden without
// JavaScript, where they could not work.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  var live = null;
  function say(text) {
    if (!live) { return; }
    live.textContent = "";
    window.setTimeout(function () { live.textContent = text; }, 30);
  }

  function showCopyButtons(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("[data-copy]"), function (b) {
      b.hidden = false;
    });
  }

  // The old way, for when navigator.clipboard is missing or refuses.
  function copyWithSelection(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "copy-buffer";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (ignored) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  function selectText(element) {
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function feedback(button, ok) {
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    button.textContent = ok ? "Copied" : "Press Ctrl+C to copy";
    button.classList.toggle("is-copied", ok);
    say(ok ? "Copied to the clipboard." : "Copying was not allowed; the text is selected: press Ctrl+C (or ⌘C) to copy it.");
    window.clearTimeout(button._restore);
    button._restore = window.setTimeout(function () {
      button.textContent = label;
      button.classList.remove("is-copied");
    }, 2000);
  }

  function copy(button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source) { return; }
    var text = source.textContent;
    function fallback() {
      var ok = copyWithSelection(text);
      if (!ok) { selectText(source); }
      feedback(button, ok);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { feedback(button, true); }, fallback);
    } else {
      fallback();
    }
  }

  function setupCopy() {
    showCopyButtons(document);
    document.addEventListener("click", function (e) {
      var button = e.target.closest ? e.target.closest("[data-copy]") : null;
      if (button) { copy(button); }
    });
  }

  function setupLive() {
    var region = document.getElementById("result-live");
    if (!region) { return; }
    var last = region.getAttribute("data-announce");
    document.body.addEventListener("htmx:afterSettle", function (e) {
      var target = e.detail && e.detail.target;
      if (!target || target.id !== "result-live") { return; }
      var current = document.getElementById("result-live") || target;
      showCopyButtons(current);
      // Announce changes of status, not every refresh.
      var now = current.getAttribute("data-announce");
      if (now && now !== last) { say(now + "."); }
      last = now;
    });
  }

  // The changes from the original: inline, or the two texts side by side. Without
  // JavaScript both show, one after the other.
  function setupDiffs(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll(".diff"), function (d) {
      var sw = d.querySelector(".diff-switch");
      if (sw) { sw.hidden = false; }
      d.classList.add("has-switch");
    });
  }

  function setupDiffSwitch() {
    document.addEventListener("click", function (e) {
      var b = e.target.closest ? e.target.closest("[data-diff-view]") : null;
      if (!b) { return; }
      var d = b.closest(".diff");
      d.setAttribute("data-view", b.getAttribute("data-diff-view"));
      Array.prototype.forEach.call(d.querySelectorAll("[data-diff-view]"), function (x) {
        x.setAttribute("aria-pressed", x === b ? "true" : "false");
      });
    });
    document.body.addEventListener("htmx:afterSettle", function (e) { setupDiffs(e.target); });
  }

  // On a phone the long parts (the prompt, the whole passages) start folded, so the
  // claims and their sources come within two screens; the summaries still open them.
  var phone = window.matchMedia ? window.matchMedia("(max-width: 640px)") : null;
  function foldClaims(root) {
    Array.prototype.forEach.call((root || document).querySelectorAll("table.ledger"), function (table) {
      table.classList.add("is-folded");
      Array.prototype.forEach.call(table.querySelectorAll("tr.claim"), function (row) {
        var cell = row.querySelector(".claim-text");
        if (!cell || cell.querySelector(".claim-toggle")) { return; }
        var button = document.createElement("button");
        button.type = "button";
        button.className = "claim-toggle";
        button.setAttribute("aria-expanded", "false");
        button.setAttribute("data-testid", "claim-toggle");
        button.textContent = "Why, and the sources";
        button.addEventListener("click", function () {
          var open = row.classList.toggle("is-open");
          button.setAttribute("aria-expanded", open ? "true" : "false");
        });
        cell.appendChild(button);
      });
    });
  }

  function foldForPhone(root) {
    if (!phone || !phone.matches) { return; }
    foldClaims(root);
    Array.prototype.forEach.call((root || document).querySelectorAll("details[data-phone-fold][open]"), function (d) {
      if (!d.hasAttribute("data-user-opened")) { d.open = false; }
    });
  }

  function setupFolding() {
    foldForPhone(document);
    // What the person opens stays open (a toggle event cannot tell them from the page).
    document.addEventListener("click", function (e) {
      var summary = e.target.closest && e.target.closest("summary");
      var details = summary && summary.parentElement;
      if (details && details.hasAttribute("data-phone-fold")) { details.setAttribute("data-user-opened", ""); }
    });
    document.body.addEventListener("htmx:afterSettle", function (e) {
      var target = e.detail && e.detail.target;
      if (target && target.id === "result-live") { foldForPhone(document.getElementById("result-live")); }
    });
  }

  ready(function () {
    live = document.getElementById("result-announce");
    setupFolding();
    setupCopy();
    setupLive();
    setupDiffs(document);
    setupDiffSwitch();
  });
})();
