// Settings page: "Add a row" to the glossary table, and a chosen CSV file read into the
// import box (so the form posts plain text; without JavaScript, paste the rows).
(function () {
  "use strict";

  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  ready(function () {
    var add = document.getElementById("add-row");
    var rows = document.getElementById("glossary-rows");
    if (add && rows) {
      add.hidden = false;
      add.addEventListener("click", function () {
        var last = rows.querySelector("tr:last-child");
        if (!last) { return; }
        var row = last.cloneNode(true);
        Array.prototype.forEach.call(row.querySelectorAll("input"), function (i) { i.value = ""; });
        rows.appendChild(row);
        row.querySelector("input").focus();
      });
    }
    var file = document.getElementById("csv-file");
    var text = document.getElementById("csv-text");
    if (file && text) {
      file.addEventListener("change", function () {
        var f = file.files && file.files[0];
        if (!f) { return; }
        var reader = new FileReader();
        reader.onload = function () { text.value = String(reader.result || ""); };
        reader.readAsText(f);
      });
    }
  });
})();
