// Element helpers that can only make text: a string child becomes a text node, and properties that
// would parse HTML or attach code from a string (innerHTML, outerHTML, srcdoc, on* attributes) are
// refused outright. Every page builds its DOM through h(), so run names, config values, tags and
// console lines are never parsed as markup.

const REFUSED = /^(?:innerHTML|outerHTML|srcdoc|on[a-z].*)$/i;

function appendChildren(node, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) appendChildren(node, child);
    else if (typeof child === "object" && "nodeType" in child) node.append(child);
    else node.append(document.createTextNode(String(child)));
  }
}

/**
 * A new element: h("a", {class: "x", href, on: {click: fn}, dataset: {key}}, "text", child, [more]).
 * Props: class, dataset, on (listeners), aria-* / role / data-* (attributes); anything else is set
 * as a property when the element has it (href, type, value, checked, disabled, hidden, title...),
 * else as an attribute. null, undefined and false props are skipped.
 */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  setProps(node, props);
  appendChildren(node, children);
  return node;
}

export function setProps(node, props) {
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "on") {
      for (const [event, listener] of Object.entries(value)) node.addEventListener(event, listener);
      continue;
    }
    if (REFUSED.test(name)) throw new Error(`h() does not set ${name}: text only`);
    if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (/^(?:aria-|data-|role$|for$)/.test(name)) node.setAttribute(name, value === true ? "true" : String(value));
    else if (name in node) node[name] = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  return node;
}

/** Replaces node's children with the given ones (same rules as h's children). */
export function fill(node, ...children) {
  node.replaceChildren();
  appendChildren(node, children);
  return node;
}
