// The DOM helpers every grok_nb view uses; grok_nb/notebook/assets.py puts them before each view's module.

function h(tag, cls, attrs = {}, text = "") {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    el.setAttribute(k, v === true ? "" : String(v));
  }
  if (text) el.textContent = text;
  return el;
}

function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
