// Runs as the sources panel's js_on_load (rag/web/layout.py): `element` is the panel,
// `watch` re-runs a callback when its value changes.
//
// Clicking a citation badge scrolls its source block into view and highlights it. The
// listener is installed once, on the document, so re-rendered messages keep working;
// the href="#src-N" anchor is the fallback without JavaScript.
if (!window.__ragCiteHandler) {
  window.__ragCiteHandler = true;
  document.addEventListener('click', function (ev) {
    var badge = ev.target && ev.target.closest ? ev.target.closest('a.cite-badge') : null;
    if (!badge) return;
    var id = (badge.getAttribute('href') || '').replace(/^#/, '');
    var block = id ? document.getElementById(id) : null;
    if (!block) return;
    ev.preventDefault();
    ev.stopPropagation();
    var turn = block.closest('details');
    if (turn) turn.open = true;
    document.querySelectorAll('.src-block.src-active').forEach(function (b) { b.classList.remove('src-active'); });
    block.classList.add('src-active');
    block.scrollIntoView({block: 'nearest'});
    var ctx = block.querySelector('.src-context'), mark = block.querySelector('mark');
    if (ctx && mark) ctx.scrollTop += mark.getBoundingClientRect().top - ctx.getBoundingClientRect().top - 40;
  }, true);
}

// Each source shows its article around the passage: scroll each box to its highlight.
function ragShowMarks() {
  element.querySelectorAll('.src-context').forEach(function (ctx) {
    var mark = ctx.querySelector('mark');
    if (mark && mark.getClientRects().length) {
      ctx.scrollTop += mark.getBoundingClientRect().top - ctx.getBoundingClientRect().top - 40;
    }
  });
}
ragShowMarks();
watch('value', ragShowMarks);
