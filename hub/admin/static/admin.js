// Switchboard admin: small enhancements on top of htmx. Every form works without this file.
(function () {
  "use strict";

  // Show only the chosen provider's scope checkboxes; a disabled fieldset submits nothing.
  function syncProviderScopes() {
    var select = document.getElementById("connect-provider");
    if (!select) return;
    document.querySelectorAll("fieldset[data-provider]").forEach(function (fieldset) {
      var other = fieldset.getAttribute("data-provider") !== select.value;
      fieldset.hidden = other;
      fieldset.disabled = other;
    });
  }

  function enhance(root) {
    root.querySelectorAll("[data-copy]").forEach(function (button) { button.hidden = false; });
    syncProviderScopes();
    // After a swap, move focus to what needs attention: a new key or an error message.
    var target = root.querySelector("[data-autofocus]");
    if (target) target.focus();
  }

  function copied(button, text) {
    var status = button.closest(".key-box").querySelector(".copy-status");
    if (status) status.textContent = text;
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) return;
    var field = document.getElementById(button.getAttribute("data-copy"));
    if (!field) return;
    var fallback = function () {
      field.select();
      try {
        copied(button, document.execCommand("copy") ? "Copied." : "Select the key and copy it.");
      } catch (err) {
        copied(button, "Select the key and copy it.");
      }
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(function () { copied(button, "Copied."); }, fallback);
    } else {
      fallback();
    }
  });

  document.addEventListener("change", function (event) {
    if (event.target.id === "connect-provider") syncProviderScopes();
  });
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (event) {
    if (event.target !== document.body) enhance(event.target);
  });
})();
