// Model page: a preset fills the base URL (and, for a detected Ollama, the model list);
// "Test connection" runs without leaving the page, so a typed key stays in its field;
// picking a listed model fills the Model field. Without JavaScript the buttons post the form.
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  function fillPicker(picker, models, current) {
    picker.textContent = "";
    if (!models.length) {
      var none = document.createElement("option");
      none.value = "";
      none.textContent = "No models listed";
      picker.appendChild(none);
      picker.disabled = true;
      return;
    }
    models.forEach(function (m) {
      var opt = document.createElement("option");
      opt.value = m;
      opt.textContent = m;
      if (m === current) { opt.selected = true; }
      picker.appendChild(opt);
    });
    picker.disabled = false;
  }

  function say(box, ok, text) {
    box.textContent = "";
    var p = document.createElement("p");
    p.className = "flash " + (ok ? "flash-ok" : "flash-error");
    p.setAttribute("data-ok", ok ? "true" : "false");
    p.textContent = text;
    box.appendChild(p);
  }

  ready(function () {
    var form = document.getElementById("model-form");
    if (!form) { return; }
    var preset = document.getElementById("preset");
    var url = document.getElementById("base-url");
    var model = document.getElementById("model-name");
    var picker = document.getElementById("model-picker");
    var result = document.getElementById("test-result");
    var testButton = form.querySelector("[data-testid=test-button]");

    preset.addEventListener("change", function () {
      var opt = preset.options[preset.selectedIndex];
      if (!opt || !opt.value) { return; }
      var presetUrl = opt.getAttribute("data-url");
      if (presetUrl) { url.value = presetUrl; } else { url.value = ""; url.focus(); }
      var models = (opt.getAttribute("data-models") || "").split("\n").filter(Boolean);
      if (models.length) {
        fillPicker(picker, models, model.value);
        if (models.indexOf(model.value) < 0) { model.value = models[0]; }
      }
    });

    picker.addEventListener("change", function () {
      if (picker.value) { model.value = picker.value; }
    });

    testButton.addEventListener("click", function (event) {
      event.preventDefault();
      if (!url.value.trim()) { say(result, false, "Enter the base URL first."); url.focus(); return; }
      var body = new URLSearchParams(new FormData(form));
      testButton.disabled = true;
      say(result, true, "Testing…");
      fetch("/admin/model/test", {
        method: "POST",
        body: body,
        headers: { "Accept": "application/json" },
        credentials: "same-origin"
      }).then(function (response) {
        return response.json();
      }).then(function (data) {
        if (data.ok) {
          fillPicker(picker, data.models || [], model.value);
          if (!model.value && data.models && data.models.length) { model.value = data.models[0]; }
          var n = (data.models || []).length;
          say(result, true, "Connected in " + Math.round(data.latency_ms) + " ms: " + n + " model" + (n === 1 ? "" : "s") + ".");
        } else {
          say(result, false, data.error || data.detail || "The test failed.");
        }
      }).catch(function () {
        say(result, false, "The test could not be run; reload the page and try again.");
      }).then(function () {
        testButton.disabled = false;
      });
    });
  });
})();
