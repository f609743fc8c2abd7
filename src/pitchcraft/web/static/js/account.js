// Account page: the delete button stays disabled until the email typed matches the
// account's (the server checks it again).
(function () {
  "use strict";
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var form = document.querySelector("[data-testid=delete-form]");
    if (!form) { return; }
    var typed = form.querySelector("[data-testid=delete-confirm]");
    var button = form.querySelector("[data-testid=delete-account]");
    var email = (form.getAttribute("data-email") || "").toLowerCase();
    function update() { button.disabled = typed.value.trim().toLowerCase() !== email; }
    typed.addEventListener("input", update);
    update();
  });
})();
