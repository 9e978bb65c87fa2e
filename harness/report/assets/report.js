// The HTML report's only script, inlined into index.html: `#cell=CHECK/ENGINE` opens that cell's findings.
// Links carry the fragment, so a click, the back button and a shared URL all open the same cell.
(function () {
  "use strict";
  function show() {
    var m = /^#cell=(.+)$/.exec(location.hash);
    var id = m ? "cell=" + decodeURIComponent(m[1]) : null;
    document.querySelectorAll(".cell-detail").forEach(function (s) { s.hidden = s.id !== id; });
    document.querySelectorAll("td.cell").forEach(function (td) {
      td.classList.toggle("selected", td.getAttribute("data-cell") === id);
    });
    var open = id && document.getElementById(id);
    if (open) { open.scrollIntoView({block: "start"}); }
  }
  window.addEventListener("hashchange", show);
  show();
}());
