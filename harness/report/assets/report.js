// The HTML report's only script, inlined into index.html: `#cell=CHECK/ENGINE` opens that cell's findings.
// Links carry the fragment, so a click, the back button and a shared URL all open the same cell.  The panel
// is fixed in the window (report.css), so opening one never scrolls the page: it is in view as it opens,
// also on a first load, before the page has laid out below the fold.  Esc closes it.
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
    if (open) { open.scrollTop = 0; open.focus({preventScroll: true}); }
  }
  window.addEventListener("hashchange", show);
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && /^#cell=/.test(location.hash)) { location.hash = "matrix"; }
  });
  show();
}());
