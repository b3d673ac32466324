// Switchboard admin: small enhancements on top of htmx. Every form works without this file.
(function () {
  "use strict";

  // In each connect form, show only the chosen provider's scope checkboxes and help; a disabled fieldset
  // submits nothing.
  function syncProviders(select) {
    select.form.querySelectorAll("[data-provider]").forEach(function (part) {
      var other = part.getAttribute("data-provider") !== select.value;
      part.hidden = other;
      if (part.tagName === "FIELDSET") part.disabled = other;
    });
  }

  function syncProviderScopes(root) {
    root.querySelectorAll("select[data-provider-select]").forEach(syncProviders);
  }

  function enhance(root) {
    root.querySelectorAll("[data-copy]").forEach(function (button) { button.hidden = false; });
    syncProviderScopes(root);
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
    if (event.target.matches("select[data-provider-select]")) syncProviders(event.target);
  });
  document.addEventListener("DOMContentLoaded", function () { enhance(document); });
  document.addEventListener("htmx:load", function (event) {
    if (event.target !== document.body) enhance(event.target);
  });
})();
