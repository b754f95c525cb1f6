// Reads the Colab page as it is rendered; run by WebDriver's execute_script (a function body).
// arguments: [page, mode, ...] — page is colab_page.toml as an object; mode is one of
//   "snapshot"                          → everything classify() needs, as plain data
//   "find", texts, selector, scopeTexts → the visible clickable whose text is one of texts (in an open
//                                         dialog showing one of scopeTexts, if any are given), or null
//   "connect"                           → the connect button's clickable element, or null
// Dialog hosts often have no box of their own (Material 3 `:host{display:contents}`; MWC draws a fixed
// surface inside its shadow root), so nothing here tests a host's box: an element counts as shown when
// something of it (itself or a descendant, through shadow roots and slots) has a box.
const [page, mode, ...args] = arguments;
const SKIPPED = new Set(['style', 'script', 'template', 'noscript', 'link', 'meta']);
const squash = s => (s || '').replace(/\s+/g, ' ').trim();

const all = [];
(function walk(root) {
  for (const el of root.querySelectorAll('*')) { all.push(el); if (el.shadowRoot) walk(el.shadowRoot); }
})(document);

const hidden = el => {
  const style = getComputedStyle(el);
  return style.display === 'none' || style.visibility === 'hidden';
};
// The nodes an element renders, in the composed tree: its shadow root's, a slot's assigned nodes.
const rendered = el => {
  if (el.shadowRoot) return [...el.shadowRoot.childNodes];
  if (el.localName === 'slot') {
    const assigned = el.assignedNodes({flatten: true});
    return assigned.length ? assigned : [...el.childNodes];
  }
  return [...el.childNodes];
};
const hasBox = node => {
  const rects = node.nodeType === Node.TEXT_NODE
    ? (() => { const r = document.createRange(); r.selectNodeContents(node); return [...r.getClientRects()]; })()
    : [...node.getClientRects()];
  return rects.some(r => r.width > 0 && r.height > 0);
};
// Is anything of node on screen? (its own box, or a rendered descendant's)
const shown = (node, depth = 0) => {
  if (node.nodeType === Node.TEXT_NODE) return !!node.data.trim() && hasBox(node);
  if (node.nodeType !== Node.ELEMENT_NODE || SKIPPED.has(node.localName) || depth > 60) return false;
  if (hidden(node)) return false;
  if (hasBox(node)) return true;
  return rendered(node).some(child => shown(child, depth + 1));
};
// The text node renders, through every shadow root and slot, titles included.
const deepText = (node, depth = 0) => {
  if (node.nodeType === Node.TEXT_NODE) return node.data;
  if (node.nodeType !== Node.ELEMENT_NODE || SKIPPED.has(node.localName) || depth > 60 || hidden(node)) return '';
  return rendered(node).map(child => deepText(child, depth + 1)).join(' ');
};
// What a clickable shows: its rendered text, else its label attribute.
const label = el => squash(deepText(el)) ||
  squash(el.getAttribute('label') || el.getAttribute('aria-label') || el.getAttribute('title') || '');
// Is el inside outer, across shadow boundaries?
const within = (outer, el) => { for (let n = el; n; n = n.parentNode || n.host) { if (n === outer) return true; } return false; };

// Open dialogs: a known tag, not closed by its own `open`/`opened` flag, with something on screen.
// A dialog inside another one (md-dialog's native <dialog>, the reCAPTCHA host's mwc-dialog) is part of it.
const isOpen = el => {
  const flagged = 'open' in el || 'opened' in el;
  return (!flagged || el.hasAttribute('open') || el.open === true || el.opened === true) && shown(el);
};
const openDialogs = () => {
  const found = all.filter(el => page.dialogs.tags.includes(el.localName) && isOpen(el));
  return found.filter(el => !found.some(other => other !== el && within(other, el)));
};

const connectElement = () => {
  for (const sel of page.connect.hosts) {
    let node = document.querySelector(sel);
    if (!node) continue;
    const host = node;
    for (const step of page.connect.shadow_path) {
      const next = node.shadowRoot && node.shadowRoot.querySelector(step);
      if (!next) break;
      node = next;
    }
    return {host: host, button: node};
  }
  for (const sel of page.connect.legacy) {
    const node = document.querySelector(sel);
    if (node) return {host: node, button: node};
  }
  return null;
};

const find = (texts, selector, scopeTexts) => {
  const wanted = texts.map(t => squash(t).toLowerCase());
  const scopes = scopeTexts.length
    ? openDialogs().filter(d => { const t = squash(deepText(d)).toLowerCase();
                                  return scopeTexts.some(s => t.includes(squash(s).toLowerCase())); })
    : [document];
  for (const scope of scopes) {
    const hits = all.filter(el => el.matches(selector) && (scope === document || within(scope, el)) &&
                                  wanted.includes(label(el).toLowerCase()) && shown(el));
    // the deepest match: not a wrapper that only shows the same text as the button inside it
    const hit = hits.find(h => !hits.some(o => o !== h && within(h, o)));
    if (hit) return hit;
  }
  return null;
};

const emailIn = s => { const m = (s || '').match(/[\w.+-]+@[\w-]+(\.[\w-]+)+/); return m ? m[0] : null; };
const signedIn = () => {
  for (const sel of page.account.selectors) {
    for (const el of all.filter(e => e.matches(sel))) {
      for (const attr of page.account.attributes) {
        const email = emailIn(el.getAttribute(attr));
        if (email) return email;
      }
    }
  }
  return null;
};

const snapshot = () => {
  const connect = connectElement();
  const runButtons = all.filter(el => el.localName === page.running.run_button_tag);
  const tip = el => el ? (el.title || el.getAttribute('tooltiptext') || '') : '';
  const connectedBy = connect ? page.connect.connected_selectors.filter(
    sel => all.some(el => el.matches(sel) && within(connect.host, el) && shown(el))) : [];
  return {
    url: location.href, title: document.title, lang: document.documentElement.lang || '',
    connect: connect ? label(connect.button) || label(connect.host) : null,
    connect_title: connect ? (tip(connect.button) || tip(connect.host) || '') : null,
    connect_usage: connectedBy.length > 0,
    dialogs: openDialogs().map(el => ({
      tag: el.localName,
      text: squash(deepText(el)).slice(0, 800),
      buttons: all.filter(b => b.matches(page.dialogs.clickable) && b !== el && within(el, b) && shown(b))
                  .map(label).filter(t => t),
    })),
    running: {  // raw texts: classify() matches them against the page's language
      stop_symbol: runButtons.some(el => el.shadowRoot && !!el.shadowRoot.querySelector(page.running.stop_symbol)),
      titles: [...new Set(runButtons.map(el => squash(el.title)).filter(t => t))].slice(0, 50),
      tooltips: [...new Set(all.filter(el => el.localName === page.running.tooltip_tag)
                               .map(el => squash(el.getAttribute('message'))).filter(t => t))].slice(0, 50),
      selector: page.running.selectors.some(sel => all.some(el => el.matches(sel))),
    },
    policy_link: all.some(el => el.localName === 'a' && shown(el) &&
                                page.policy.link_patterns.some(p => (el.getAttribute('href') || '').includes(p))),
    captcha: all.some(el => page.captcha.selectors.some(sel => el.matches(sel)) && shown(el)),
    account: signedIn(),
    body: squash((document.body || document.documentElement).innerText).slice(0, 4000),  // for sign-in pages
  };
};

if (mode === 'snapshot') return snapshot();
if (mode === 'find') return find(args[0], args[1], args[2]);
if (mode === 'connect') { const c = connectElement(); return c ? c.button : null; }
throw new Error('page_reader.js: unknown mode ' + mode);
