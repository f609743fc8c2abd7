// Compose page: the character counter, background chips (Enter adds one, × removes it),
// the template editor's "edited: this run only" state and its Save / Reset answers.
// Without JavaScript the form still works: the chips are checkboxes, the text typed in
// "Add your own" is added by the server, and Save / Reset post the whole form.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function fmt(n) { return n.toLocaleString("en-US"); }

  var statusRegion = null;
  function say(text) {
    if (!statusRegion) { return; }
    // Clearing first makes a repeated message be announced again.
    statusRegion.textContent = "";
    window.setTimeout(function () { statusRegion.textContent = text; }, 30);
  }

  // --- The character counter ----------------------------------------------------------

  function setupCounter() {
    var area = document.getElementById("marketing-text");
    var counter = document.getElementById("text-count");
    if (!area || !counter) { return; }
    var count = counter.querySelector("[data-count]");
    var over = counter.querySelector("[data-over]");
    var max = parseInt(area.getAttribute("data-max"), 10) || 20000;
    var wasOver = area.value.length > max;

    function update() {
      var n = area.value.length;
      var isOver = n > max;
      count.textContent = fmt(n);
      counter.classList.toggle("is-over", isOver);
      counter.classList.toggle("is-near", !isOver && n > max * 0.9);
      over.hidden = !isOver;
      over.textContent = isOver ? " — " + fmt(n - max) + " over the limit" : "";
      if (isOver) {
        area.setAttribute("aria-invalid", "true");
      } else if (wasOver) {
        area.removeAttribute("aria-invalid");
      }
      if (isOver !== wasOver) {
        say(isOver
          ? "Your text is " + fmt(n - max) + " characters over the limit of " + fmt(max) + "."
          : "Your text is within the limit again.");
      }
      wasOver = isOver;
    }
    area.addEventListener("input", update);
    // A message about the text (it was empty, say) no longer applies once it is edited.
    area.addEventListener("input", function () {
      if (!wasOver) { area.removeAttribute("aria-invalid"); }
    }, { once: true });
    update();
  }

  // --- The channel counter: the text against the chosen channel's limit ----------------
  // Counted as the server counts it: code points after NFC, [n] citations left out.

  var CITATION = /\s?\[\s*\d{1,4}(?:\s*[,;\u2013\u2014-]\s*\d{1,4})*\s*\]/g;

  function channelChars(text) {
    var bare = (text || "").replace(/\r\n?/g, "\n").replace(CITATION, "").trim();
    return Array.from(bare.normalize ? bare.normalize("NFC") : bare).length;
  }

  function setupChannelCounter() {
    var area = document.getElementById("marketing-text");
    var select = document.getElementById("channel");
    var counter = document.getElementById("channel-count");
    var guidance = document.getElementById("channel-guidance");
    if (!area || !select || !counter) { return; }
    var count = counter.querySelector("[data-channel-count]");
    var maxOut = counter.querySelector("[data-channel-max]");
    var nameOut = counter.querySelector("[data-channel-name]");
    var over = counter.querySelector("[data-channel-over]");
    var wasOver = null;

    function update() {
      var option = select.options[select.selectedIndex];
      var max = parseInt(option && option.getAttribute("data-max"), 10);
      if (!max) {
        counter.hidden = true;
        if (guidance) { guidance.textContent = ""; }
        wasOver = null;
        return;
      }
      counter.hidden = false;
      var n = channelChars(area.value);
      var isOver = n > max;
      count.textContent = fmt(n);
      maxOut.textContent = fmt(max);
      nameOut.textContent = option.textContent.replace(/\s*\([\d,]+\)\s*$/, "");
      counter.classList.toggle("is-over", isOver);
      counter.classList.toggle("is-near", !isOver && n > max * 0.9);
      over.hidden = !isOver;
      over.textContent = isOver ? " — " + fmt(n - max) + " over" : "";
      counter.setAttribute("data-over", isOver ? "true" : "false");
      if (guidance) { guidance.textContent = option.getAttribute("data-guidance") || ""; }
      if (wasOver !== null && isOver !== wasOver) {
        say(isOver
          ? "Your text is " + fmt(n - max) + " characters over the channel's limit of " + fmt(max) + "."
          : "Your text fits the channel's limit.");
      }
      wasOver = isOver;
    }
    area.addEventListener("input", update);
    select.addEventListener("change", update);
    update();
  }

  // --- Background chips ---------------------------------------------------------------

  function setupChips() {
    var list = document.getElementById("chips");
    var input = document.getElementById("new-background");
    var addButton = document.getElementById("add-background");
    if (!list || !input) { return; }
    var max = parseInt(list.getAttribute("data-max"), 10) || 20;
    var maxChars = parseInt(input.getAttribute("data-max"), 10) || 100;
    var made = 0;
    if (addButton) { addButton.hidden = false; }

    function boxes() { return Array.prototype.slice.call(list.querySelectorAll("input.chip-input")); }
    function checkedCount() { return boxes().filter(function (b) { return b.checked; }).length; }
    function find(value) {
      var key = value.toLowerCase();
      return boxes().filter(function (b) { return b.value.toLowerCase() === key; })[0] || null;
    }

    function makeChip(value) {
      made += 1;
      var id = "bg-new-" + made;
      var li = document.createElement("li");
      li.className = "chip-item is-custom";
      li.setAttribute("data-kind", "custom");
      var box = document.createElement("input");
      box.type = "checkbox";
      box.className = "chip-input";
      box.name = "backgrounds";
      box.value = value;
      box.id = id;
      box.checked = true;
      var label = document.createElement("label");
      label.className = "chip";
      label.htmlFor = id;
      label.setAttribute("data-testid", "chip");
      label.textContent = value;
      var remove = document.createElement("button");
      remove.type = "button";
      remove.className = "chip-remove";
      remove.setAttribute("data-remove-chip", "");
      remove.setAttribute("aria-label", "Remove " + value);
      remove.title = "Remove";
      remove.textContent = "×";
      li.appendChild(box);
      li.appendChild(label);
      li.appendChild(remove);
      list.appendChild(li);
    }

    function add(raw) {
      var added = [];
      var problems = [];
      raw.split(/[,;\n]/).forEach(function (part) {
        var value = part.replace(/\s+/g, " ").trim();
        if (!value) { return; }
        if (value.length > maxChars) {
          problems.push("“" + value.slice(0, 24) + "…” is longer than " + maxChars + " characters.");
          return;
        }
        var existing = find(value);
        if (existing) {
          if (!existing.checked && checkedCount() >= max) {
            problems.push("You can choose at most " + max + " backgrounds.");
            return;
          }
          existing.checked = true;
          added.push(existing.value);
          return;
        }
        if (checkedCount() >= max) {
          problems.push("You can choose at most " + max + " backgrounds.");
          return;
        }
        makeChip(value);
        added.push(value);
      });
      var message = (added.length ? "Selected " + added.join(", ") + ". " : "") + problems.join(" ");
      if (message) { say(message.trim()); }
      showProblem(problems.join(" "));
      return problems.length === 0;
    }

    var problem = null;
    function showProblem(text) {
      if (!problem) {
        problem = document.createElement("p");
        problem.className = "field-error";
        problem.id = "new-background-error";
        problem.setAttribute("data-testid", "background-error");
        input.parentNode.parentNode.insertBefore(problem, input.parentNode.nextSibling);
      }
      problem.textContent = text;
      problem.hidden = !text;
      if (text) {
        input.setAttribute("aria-invalid", "true");
        input.setAttribute("aria-describedby", "new-background-hint new-background-error");
      } else {
        input.removeAttribute("aria-invalid");
        input.setAttribute("aria-describedby", "new-background-hint");
      }
    }

    function addTyped() {
      if (!input.value.trim()) { return; }
      if (add(input.value)) { input.value = ""; }
    }

    input.addEventListener("keydown", function (e) {
      if (e.key === "Enter" && !e.isComposing) {
        // Enter adds a chip here; it must not send the form.
        e.preventDefault();
        addTyped();
      }
    });
    if (addButton) { addButton.addEventListener("click", addTyped); }

    list.addEventListener("click", function (e) {
      var button = e.target.closest ? e.target.closest("[data-remove-chip]") : null;
      if (!button) { return; }
      var item = button.closest("li");
      var box = item.querySelector("input.chip-input");
      var items = Array.prototype.slice.call(list.children);
      var next = items[items.indexOf(item) + 1] || items[items.indexOf(item) - 1];
      item.parentNode.removeChild(item);
      say("Removed " + (box ? box.value : "the background") + ".");
      // Keep the keyboard somewhere sensible: the neighbouring chip, or the input.
      var target = next ? next.querySelector("[data-remove-chip]") || next.querySelector("input") : input;
      target.focus();
    });

    list.addEventListener("change", function (e) {
      var box = e.target;
      if (box.classList && box.classList.contains("chip-input") && box.checked && checkedCount() > max) {
        box.checked = false;
        say("You can choose at most " + max + " backgrounds.");
      }
    });
  }

  // --- The template editor ------------------------------------------------------------

  function normalise(text) { return (text || "").replace(/\r\n?/g, "\n"); }

  function refreshTemplate() {
    var area = document.getElementById("template");
    var panel = document.getElementById("template-panel");
    var badge = document.getElementById("template-badge");
    var state = document.getElementById("template-state");
    if (!area || !panel) { return; }
    var edited = normalise(area.value) !== normalise(area.getAttribute("data-saved"));
    var isDefault = panel.getAttribute("data-default") === "true";
    if (badge) {
      badge.textContent = edited ? "Edited: this run only" : (isDefault ? "Default" : "Your template");
      badge.classList.toggle("is-edited", edited);
    }
    if (state) {
      state.textContent = edited
        ? "Edited: this run uses your changes without saving them."
        : state.getAttribute("data-saved-text");
    }
  }

  function setupTemplate() {
    if (!document.getElementById("template-panel")) { return; }
    if (window.htmx) {
      // Chromium gives form fields an empty style attribute on a page answered to a POST
      // (a re-shown form); htmx copying it across a swap would be an inline style, which
      // the CSP refuses. Nothing here animates styles, so they need not be settled.
      window.htmx.config.attributesToSettle = ["class", "width", "height"];
    }
    document.addEventListener("input", function (e) {
      if (e.target && e.target.id === "template") { refreshTemplate(); }
    });
    document.body.addEventListener("htmx:beforeSwap", function (e) {
      // A refused template (422) comes back as the panel with the reason: show it.
      var target = e.detail && e.detail.target;
      if (target && target.id === "template-panel" && e.detail.xhr && e.detail.xhr.status === 422) {
        e.detail.shouldSwap = true;
        e.detail.isError = false;
      }
    });
    document.body.addEventListener("htmx:afterSettle", function (e) {
      var target = e.detail && e.detail.target;
      if (!target || target.id !== "template-panel") { return; }
      refreshTemplate();
      var panel = document.getElementById("template-panel") || target;
      var message = panel.querySelector("[role=alert], [role=status]");
      if (message) { say(message.textContent); }
    });
    function failed(e) {
      var elt = e.detail && e.detail.elt;
      if (!elt || !elt.closest || !elt.closest("#template-panel")) { return; }
      var xhr = e.detail.xhr;
      var text = e.type === "htmx:sendError"
        ? "The template was not saved: the server could not be reached."
        : (xhr && xhr.status === 403
          ? "This page has expired. Reload the page and try again."
          : "The template was not saved. Please try again in a moment.");
      var panel = document.getElementById("template-panel");
      var p = panel.querySelector("[data-template-problem]");
      if (!p) {
        p = document.createElement("p");
        p.className = "flash flash-error";
        p.setAttribute("role", "alert");
        p.setAttribute("data-template-problem", "");
        panel.insertBefore(p, panel.querySelector(".template-actions"));
      }
      p.textContent = text;
    }
    document.body.addEventListener("htmx:responseError", failed);
    document.body.addEventListener("htmx:sendError", failed);
    refreshTemplate();
  }

  // --- Sending ------------------------------------------------------------------------

  function setupSubmit() {
    var form = document.getElementById("compose-form");
    var button = document.getElementById("process");
    if (!form || !button) { return; }
    var label = button.textContent;
    form.addEventListener("submit", function (e) {
      if (e.submitter && e.submitter !== button) { return; }
      // One click, one job: a second click while the first is on its way does nothing.
      if (button.getAttribute("aria-disabled") === "true") { e.preventDefault(); return; }
      button.setAttribute("aria-disabled", "true");
      button.classList.add("is-busy");
      button.textContent = "Processing…";
    });
    // Coming back with the Back button shows the page as it was left: make it usable.
    window.addEventListener("pageshow", function () {
      button.removeAttribute("aria-disabled");
      button.classList.remove("is-busy");
      button.textContent = label;
    });
  }

  function focusError() {
    var error = document.getElementById("form-error");
    if (error) { error.focus(); }
  }

  ready(function () {
    statusRegion = document.getElementById("compose-status");
    setupCounter();
    setupChannelCounter();
    setupChips();
    setupTemplate();
    setupSubmit();
    focusError();
  });
})();
