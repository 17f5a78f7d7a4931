// Building DOM nodes without HTML strings: every string is a text node or an attribute value, never markup, so
// what a server sends (a node id, a version, a state, a header) is shown as text and cannot inject elements.
//   h('b', { class: 'bad', title: 'x' }, 'text', h('span', {}, 'more'))

/** An element with `attrs` (null/undefined/false ones skipped; `style` as a string) and children (strings as text). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, String(v));
  }
  el.append(...children.flat().filter((c) => c !== null && c !== undefined && c !== false).map((c) => (c instanceof Node ? c : String(c))));
  return el;
}
