// mailbot console: the only script. A form that was sent disables its buttons, so a second
// click (sign and send, release) does not send it twice. No inline script anywhere.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.method.toLowerCase() !== "post") { return; }
  setTimeout(function () {
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
  }, 0);
});
// "พิมพ์หน้านี้": the browser's print dialog (the page's print styles hide the forms)
document.addEventListener("click", function (event) {
  if (event.target.matches && event.target.matches("button.print")) { window.print(); }
});

// setup, mailbox step: show only what the chosen provider needs
document.addEventListener("DOMContentLoaded", function () {
  var form = document.querySelector("form.mailbox");
  if (!form) return;
  function show() {
    var picked = form.querySelector("input[name=provider]:checked");
    var key = picked ? picked.value : "";
    form.querySelectorAll("[data-for]").forEach(function (el) {
      el.hidden = el.getAttribute("data-for").split(" ").indexOf(key) < 0;
    });
  }
  form.querySelectorAll("input[name=provider]").forEach(function (r) { r.addEventListener("change", show); });
  show();
});
