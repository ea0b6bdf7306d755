// mailbot console: the only script. A form that was sent disables its buttons, so a second
// click (sign and send, release) does not send it twice. No inline script anywhere.
document.addEventListener("submit", function (event) {
  var form = event.target;
  if (form.method.toLowerCase() !== "post") { return; }
  setTimeout(function () {
    form.querySelectorAll("button[type=submit]").forEach(function (b) { b.disabled = true; });
  }, 0);
});
