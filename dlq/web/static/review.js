// Optional: typing a value in the per-field form selects its "entered value" radio.
// The page works the same without this script (the radio can be clicked).
document.querySelectorAll("input[data-radio]").forEach(function (input) {
  input.addEventListener("input", function () {
    var radio = document.getElementById(input.dataset.radio);
    if (radio) radio.checked = true;
  });
});
