// Documents page: drag and drop onto the upload card, upload as soon as files are chosen
// (with progress), keep screen readers told about status changes, and keep keyboard focus
// somewhere sensible when rows come and go. Without JavaScript the form still posts.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function hasFiles(e) {
    var types = e.dataTransfer && e.dataTransfer.types;
    return !!types && Array.prototype.indexOf.call(types, "Files") !== -1;
  }

  function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }

  // --- Upload -------------------------------------------------------------------------

  function setupUpload() {
    var form = document.getElementById("upload-form");
    var input = document.getElementById("files");
    if (!form || !input) { return; }
    var token = form.querySelector("input[name=csrftoken]");
    var status = document.getElementById("upload-status");
    var bar = document.getElementById("upload-progress");
    var error = document.getElementById("upload-error");
    var busy = false;
    var depth = 0;

    function showError(text) {
      form.classList.remove("uploading");
      form.removeAttribute("aria-busy");
      busy = false;
      if (status) { status.textContent = ""; }
      if (bar) { bar.hidden = true; }
      if (error) { error.textContent = text; error.hidden = false; }
      input.value = "";
    }

    function upload(files) {
      if (busy || !files || !files.length) { return; }
      busy = true;
      if (error) { error.hidden = true; error.textContent = ""; }
      var body = new FormData();
      // The token first: the CSRF check reads fields up to the first file.
      body.append("csrftoken", token ? token.value : "");
      for (var i = 0; i < files.length; i += 1) { body.append("files", files[i], files[i].name); }
      form.classList.add("uploading");
      form.setAttribute("aria-busy", "true");
      if (status) { status.textContent = "Uploading " + plural(files.length, "file", "files") + "…"; }
      if (bar) { bar.value = 0; bar.hidden = false; }

      var xhr = new XMLHttpRequest();
      xhr.open("POST", form.action);
      xhr.setRequestHeader("X-CSRFToken", token ? token.value : "");
      xhr.setRequestHeader("Accept", "text/html");
      xhr.upload.addEventListener("progress", function (e) {
        if (bar && e.lengthComputable) { bar.value = e.loaded / e.total; }
      });
      xhr.addEventListener("load", function () {
        if (xhr.status >= 200 && xhr.status < 300) {
          // The server answered with a redirect that the request followed: go there, so
          // the page shows the new rows (and the sign-in page if the session ended).
          if (bar) { bar.value = 1; }
          window.location.assign(xhr.responseURL || "/documents");
          return;
        }
        var detail = "";
        try { detail = JSON.parse(xhr.responseText).detail || ""; } catch (ignored) { detail = ""; }
        if (xhr.status === 413) {
          showError(detail || "These files are too large to upload at once. Try fewer files at a time.");
        } else if (xhr.status === 403) {
          showError("This page has expired. Reload the page and try again.");
        } else {
          showError(detail || "The upload did not go through. Please try again.");
        }
      });
      xhr.addEventListener("error", function () {
        showError("The upload did not go through: the server could not be reached. Please try again.");
      });
      xhr.send(body);
    }

    input.addEventListener("change", function () { upload(input.files); });

    form.addEventListener("dragenter", function (e) {
      if (!hasFiles(e)) { return; }
      e.preventDefault();
      depth += 1;
      form.classList.add("dragging");
    });
    form.addEventListener("dragover", function (e) {
      if (!hasFiles(e)) { return; }
      e.preventDefault();
      e.dataTransfer.dropEffect = "copy";
      form.classList.add("dragging");
    });
    form.addEventListener("dragleave", function () {
      depth = Math.max(0, depth - 1);
      if (depth === 0) { form.classList.remove("dragging"); }
    });
    form.addEventListener("drop", function (e) {
      e.preventDefault();
      depth = 0;
      form.classList.remove("dragging");
      if (e.dataTransfer && e.dataTransfer.files.length) { upload(e.dataTransfer.files); }
    });
    // A file dropped next to the card must not make the browser leave the page to show it.
    ["dragover", "drop"].forEach(function (name) {
      window.addEventListener(name, function (e) {
        if (hasFiles(e) && !form.contains(e.target)) {
          e.preventDefault();
          if (e.dataTransfer) { e.dataTransfer.dropEffect = "none"; }
        }
      });
    });
  }

  // --- The list of files ----------------------------------------------------------------

  function summary() {
    var rows = document.querySelectorAll("[data-testid=doc-row]");
    var counts = { queued: 0, processing: 0, indexed: 0, failed: 0 };
    Array.prototype.forEach.call(rows, function (row) {
      var s = row.getAttribute("data-status");
      if (Object.prototype.hasOwnProperty.call(counts, s)) { counts[s] += 1; }
    });
    if (!rows.length) { return "No documents."; }
    var parts = [];
    if (counts.indexed) { parts.push(counts.indexed + " ready"); }
    if (counts.processing) { parts.push(counts.processing + " processing"); }
    if (counts.queued) { parts.push(counts.queued + " queued"); }
    if (counts.failed) { parts.push(counts.failed + " failed"); }
    return plural(rows.length, "document", "documents") + ": " + parts.join(", ") + ".";
  }

  function setupList() {
    var live = document.getElementById("documents-status");
    var heading = document.getElementById("files-title");
    var last = summary();

    document.body.addEventListener("htmx:afterSettle", function (e) {
      var target = e.detail && e.detail.target;
      if (!target || !target.matches || !target.matches("[data-testid=documents-table]")) { return; }
      // Announce only real changes, not every poll.
      var now = summary();
      if (live && now !== last) { live.textContent = now; }
      last = now;
      // After a delete the button that had focus is gone: continue from the list's heading.
      var path = e.detail.requestConfig && e.detail.requestConfig.path;
      if (heading && path && /\/delete$/.test(path) && document.activeElement === document.body) {
        heading.focus();
      }
    });
  }

  // --- Search -----------------------------------------------------------------------------

  function setupSearch() {
    var results = document.getElementById("search-results");
    if (!results) { return; }
    function failed(e) {
      var elt = e.detail && e.detail.elt;
      if (!elt || !elt.closest || !elt.closest("[data-search-form]")) { return; }
      var p = document.createElement("p");
      p.className = "flash flash-error";
      p.setAttribute("data-testid", "search-error");
      p.textContent = e.type === "htmx:sendError"
        ? "The search did not go through: the server could not be reached."
        : "The search did not go through. Please try again in a moment.";
      results.replaceChildren(p);
    }
    document.body.addEventListener("htmx:responseError", failed);
    document.body.addEventListener("htmx:sendError", failed);
  }

  // A reload should not repeat "Received 2 files" or an old error.
  function tidyAddress() {
    var url = new URL(window.location.href);
    if (url.searchParams.has("uploaded") || url.searchParams.has("error")) {
      url.searchParams.delete("uploaded");
      url.searchParams.delete("error");
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
  }

  ready(function () {
    setupUpload();
    setupList();
    setupSearch();
    tidyAddress();
    // Marks the page as wired up (drag and drop, live list), for tests and tooling.
    document.body.dataset.documentsReady = "true";
  });
})();
