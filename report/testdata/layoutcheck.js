// Measures the rendered report and writes what is wrong into a pre element
// (id layout-check) of the top document as JSON, for a test that reads
// Chromium's --dump-dom. The report runs no script; tests add this one and
// load the page in an iframe of the width to check (headless Chromium's
// window is at least 500 px wide).
(function () {
  var problems = [], texts = 0;
  document.querySelectorAll('details').forEach(function (d) { d.open = true; });
  var vw = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > vw + 1) {
    problems.push('page is ' + document.documentElement.scrollWidth + ' px wide in a ' + vw + ' px viewport');
  }
  document.querySelectorAll('body *').forEach(function (el) {
    if (el.closest('.scroll') || el.closest('svg') && el.tagName.toLowerCase() !== 'svg') return;
    var r = el.getBoundingClientRect(), p = el.parentElement.getBoundingClientRect();
    var out = function (r) { return r.width > 0 && (r.right > vw + 1 || r.left < -1); };
    if (out(r) && !(el.parentElement !== document.body && out(p))) {
      problems.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + ' spans ' + Math.round(r.left) + '..' + Math.round(r.right) + ' px of ' + vw);
    }
  });
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    if (box.width === 0) return; // the drawing for the other screen size
    var chart = (svg.closest('[id]') || {}).id || svg.getAttribute('aria-label');
    var rects = [];
    svg.querySelectorAll('text').forEach(function (t) {
      var r = t.getBoundingClientRect();
      if (r.width === 0) return;
      texts++;
      var s = t.childNodes[0] ? t.childNodes[0].textContent : t.textContent;
      if (r.height < 8) problems.push(chart + ': "' + s + '" is ' + r.height.toFixed(1) + ' px high');
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5 || r.top < box.top - 0.5 || r.bottom > box.bottom + 0.5) {
        problems.push(chart + ': "' + s + '" is cut off by the chart\'s edge');
      }
      rects.forEach(function (o) {
        var q = o.r;
        if (r.left < q.right - 0.5 && q.left < r.right - 0.5 && r.top < q.bottom - 0.5 && q.top < r.bottom - 0.5) {
          problems.push(chart + ': "' + s + '" overlaps "' + o.s + '"');
        }
      });
      rects.push({ r: r, s: s });
    });
  });
  var top = window.parent.document;
  var res = top.createElement('pre');
  res.id = 'layout-check';
  res.textContent = JSON.stringify({ width: vw, texts: texts, problems: problems });
  top.body.appendChild(res);
})();
