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

    var list = document.getElementById("upload-list");
    var maxFiles = parseInt(form.getAttribute("data-max-files"), 10) || 20;
    var maxBytes = (parseInt(form.getAttribute("data-max-mb"), 10) || 50) * 1024 * 1024;

    function showError(text) {
      if (error) { error.querySelector("[data-error-text]").textContent = text; error.hidden = false; }
    }

    // One line per file: its name, its own progress bar and what became of it.
    function fileLine(file) {
      var li = document.createElement("li");
      li.className = "upload-item";
      li.setAttribute("data-testid", "upload-item");
      li.setAttribute("data-state", "waiting");
      var name = document.createElement("span");
      name.className = "upload-name";
      name.textContent = file.name;
      var bar = document.createElement("progress");
      bar.max = 1;
      bar.value = 0;
      bar.setAttribute("aria-label", "Upload of " + file.name);
      var note = document.createElement("span");
      note.className = "upload-note small";
      note.setAttribute("data-testid", "upload-note");
      note.textContent = "Waiting";
      li.append(name, bar, note);
      return { li: li, bar: bar, note: note, file: file };
    }

    function settle(line, state, text) {
      line.li.setAttribute("data-state", state);
      line.note.textContent = text;
      if (state === "received") { line.bar.value = 1; }
    }

    // Batches the server accepts in one request: at most MAX_FILES_PER_UPLOAD files (the
    // request's size cap is that many times MAX_UPLOAD_MB, so the count is what binds).
    function batches(lines) {
      var out = [];
      for (var i = 0; i < lines.length; i += maxFiles) { out.push(lines.slice(i, i + maxFiles)); }
      return out;
    }

    function send(batch, onProgress) {
      return new Promise(function (resolve) {
        var body = new FormData();
        // The token first: the CSRF check reads fields up to the first file.
        body.append("csrftoken", token ? token.value : "");
        batch.forEach(function (line) { body.append("files", line.file, line.file.name); });
        var xhr = new XMLHttpRequest();
        xhr.open("POST", form.action);
        xhr.setRequestHeader("X-CSRFToken", token ? token.value : "");
        xhr.setRequestHeader("Accept", "text/html");
        xhr.upload.addEventListener("progress", function (e) {
          if (e.lengthComputable) { onProgress(e.loaded / e.total); }
        });
        xhr.addEventListener("load", function () {
          var detail = "";
          try { detail = JSON.parse(xhr.responseText).detail || ""; } catch (ignored) { detail = ""; }
          var signedOut = /\/login(\?|$)/.test(new URL(xhr.responseURL || form.action, window.location.href).pathname);
          resolve({ ok: xhr.status >= 200 && xhr.status < 300 && !signedOut, status: xhr.status, detail: detail, signedOut: signedOut, url: xhr.responseURL });
        });
        xhr.addEventListener("error", function () { resolve({ ok: false, status: 0, detail: "" }); });
        xhr.send(body);
      });
    }

    function reason(result) {
      if (result.status === 413) { return result.detail || "too large to upload"; }
      if (result.status === 0) { return "the server could not be reached"; }
      return result.detail || "the upload did not go through";
    }

    function upload(files) {
      if (busy || !files || !files.length) { return; }
      busy = true;
      var lines = Array.prototype.map.call(files, fileLine);
      if (list) { list.replaceChildren.apply(list, lines.map(function (l) { return l.li; })); list.hidden = false; }
      form.classList.add("uploading");
      form.setAttribute("aria-busy", "true");
      if (bar) { bar.value = 0; bar.hidden = false; }
      // A file over the per-file limit is not sent at all: the server would refuse it.
      var tooBig = lines.filter(function (l) { return l.file.size > maxBytes; });
      tooBig.forEach(function (l) { settle(l, "failed", "Not uploaded: larger than the " + (maxBytes / 1048576) + " MB limit"); });
      var sendable = lines.filter(function (l) { return l.file.size <= maxBytes; });
      var totalBytes = sendable.reduce(function (n, l) { return n + l.file.size + 1; }, 0) || 1;
      var doneBytes = 0;
      var received = 0;
      var added = 0;  // received and new: a file already in the library is not added again
      var duplicates = [];
      var failed = tooBig.length;
      var stopped = null;
      var chain = Promise.resolve();
      batches(sendable).forEach(function (batch, b) {
        chain = chain.then(function () {
          if (stopped) { batch.forEach(function (l) { settle(l, "failed", "Not uploaded: " + stopped); }); failed += batch.length; return null; }
          if (status) { status.textContent = "Uploading " + plural(sendable.length, "file", "files") + (b ? " (batch " + (b + 1) + ")" : "") + "…"; }
          var sizes = batch.map(function (l) { return l.file.size + 1; });
          var batchBytes = sizes.reduce(function (a, c) { return a + c; }, 0);
          batch.forEach(function (l) { settle(l, "uploading", "Uploading"); });
          return send(batch, function (share) {
            // Multipart sends the files in order: spread the bytes sent over them.
            var sent = share * batchBytes;
            batch.forEach(function (l, i) {
              var before = sizes.slice(0, i).reduce(function (a, c) { return a + c; }, 0);
              l.bar.value = Math.max(0, Math.min(1, (sent - before) / sizes[i]));
            });
            if (bar) { bar.value = (doneBytes + sent) / totalBytes; }
          }).then(function (result) {
            doneBytes += batchBytes;
            if (bar) { bar.value = doneBytes / totalBytes; }
            if (result.ok) {
              received += batch.length;
              // The server's answer says how many were new, and which were already there.
              var answer = new URL(result.url || "/documents", window.location.href).searchParams;
              added += parseInt(answer.get("uploaded"), 10) || 0;
              (answer.get("dup") || "").split(",").forEach(function (id) {
                if (id && duplicates.indexOf(id) < 0) { duplicates.push(id); }
              });
              batch.forEach(function (l) { settle(l, "received", "Received"); });
              clearErrors();
              return null;
            }
            failed += batch.length;
            if (result.signedOut) { stopped = "your session has ended"; }
            else if (result.status === 403) { stopped = "this page has expired; reload it and try again"; }
            batch.forEach(function (l) { settle(l, "failed", "Not uploaded: " + (stopped || reason(result))); });
            return null;
          });
        });
      });
      chain.then(function () {
        busy = false;
        form.classList.remove("uploading");
        form.removeAttribute("aria-busy");
        input.value = "";
        if (!failed) {
          // Everything arrived: show the page as the server has it now, as before batching.
          if (bar) { bar.value = 1; }
          window.location.assign("/documents?uploaded=" + added + (duplicates.length ? "&dup=" + duplicates.join(",") : ""));
          return;
        }
        if (status) { status.textContent = "Received " + plural(received, "file", "files") + ", " + failed + " not uploaded."; }
        if (stopped === "your session has ended") { window.location.assign("/login?next=%2Fdocuments"); return; }
        showError((failed === 1 ? "1 file was" : failed + " files were") + " not uploaded; the list above says why." + (received ? " The others were received." : ""));
        refreshTable();
      });
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

  // --- Error banners: dismissable, and gone once the next action succeeds ------------------

  function clearErrors() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-dismissable]"), function (el) {
      if (el.id === "upload-error") { el.hidden = true; } else { el.remove(); }
    });
  }

  function setupBanners() {
    document.addEventListener("click", function (e) {
      var button = e.target.closest && e.target.closest("[data-dismiss]");
      if (!button) { return; }
      var banner = button.closest("[data-dismissable]");
      if (!banner) { return; }
      if (banner.id === "upload-error") { banner.hidden = true; } else { banner.remove(); }
    });
    // A search or a delete that went through clears old errors (the list's own polling,
    // a GET, is no action of the person's and leaves them).
    document.body.addEventListener("htmx:afterRequest", function (e) {
      var verb = e.detail && e.detail.requestConfig && e.detail.requestConfig.verb;
      if (e.detail && e.detail.successful && String(verb).toLowerCase() === "post") { clearErrors(); }
    });
  }

  function refreshTable() {
    var table = document.querySelector("[data-testid=documents-table]");
    if (table && window.htmx) {
      window.htmx.ajax("GET", "/documents/table", { target: table, swap: "outerHTML" });
    }
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
    if (url.searchParams.has("uploaded") || url.searchParams.has("error") || url.searchParams.has("samples")) {
      url.searchParams.delete("uploaded");
      url.searchParams.delete("error");
      url.searchParams.delete("samples");
      window.history.replaceState(null, "", url.pathname + url.search + url.hash);
    }
  }

  ready(function () {
    setupBanners();
    setupUpload();
    setupList();
    setupSearch();
    tidyAddress();
    // Marks the page as wired up (drag and drop, live list), for tests and tooling.
    document.body.dataset.documentsReady = "true";
  });
})();
