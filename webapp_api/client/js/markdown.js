// The AI's Markdown as DOM nodes. marked (vendored, see vendor/README.md) only tokenises; the
// elements are built here with createElement and textContent, from a fixed set of tags. No
// string from a model or a user is ever parsed as HTML: raw HTML in the Markdown is shown as the
// text it is, images are links (nothing is fetched), and links keep only http(s), tg and mailto
// targets. So there is nothing to sanitise after the fact and nothing that could run.

import { Lexer } from "./vendor/marked.esm.js";
import { h, mount, copyText, toast } from "./ui.js";
import { openLink } from "./telegram.js";

const LEXER_OPTIONS = { gfm: true, breaks: true };
const LINK_PROTOCOLS = new Set(["http:", "https:", "tg:", "mailto:"]);
const STREAM_RENDER_EVERY_MS = 120;

// Character references CommonMark decodes in text and link targets (numeric ones all; named:
// those a model actually writes). Any other stays as written.
const NAMED_REFERENCES = {
  amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0", copy: "©", reg: "®",
  trade: "™", hellip: "…", mdash: "—", ndash: "–", laquo: "«", raquo: "»", times: "×",
  divide: "÷", deg: "°", euro: "€", larr: "←", rarr: "→", uarr: "↑", darr: "↓", middot: "·",
};

function decodeReferences(text) {
  if (!text.includes("&")) return text;
  return text.replace(/&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|([A-Za-z][A-Za-z0-9]{1,31}));/g, (whole, dec, hex, name) => {
    if (name) return Object.hasOwn(NAMED_REFERENCES, name) ? NAMED_REFERENCES[name] : whole;
    const code = dec ? Number(dec) : parseInt(hex, 16);
    return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : "\ufffd";
  });
}

/** The link target if it is absolute and of an allowed scheme, else null. */
export function safeHref(raw) {
  let url;
  try {
    url = new URL(decodeReferences(String(raw || "")).trim());
  } catch {
    return null;
  }
  return LINK_PROTOCOLS.has(url.protocol) ? url.href : null;
}

function link(href, title, children) {
  const target = safeHref(href);
  if (!target) return h("span", children);
  return h("a", {
    href: target,
    title: title || undefined,
    target: "_blank",
    rel: "noopener noreferrer",
    onclick: (event) => {
      if (openLink(target)) event.preventDefault();
    },
  }, children);
}

function inline(tokens) {
  return (tokens || []).map((token) => {
    switch (token.type) {
      case "text": return token.tokens ? inline(token.tokens) : decodeReferences(token.text);
      case "escape": return token.text;
      case "strong": return h("strong", inline(token.tokens));
      case "em": return h("em", inline(token.tokens));
      case "del": return h("del", inline(token.tokens));
      case "codespan": return h("code", token.text);
      case "br": return h("br");
      case "link": return link(token.href, token.title, inline(token.tokens));
      case "image": return link(token.href, token.title, ["🖼 ", token.text || token.href]);
      case "checkbox": return h("input", { type: "checkbox", disabled: true, checked: Boolean(token.checked), "aria-label": token.checked ? "done" : "not done" });
      default: return token.raw; // raw HTML and anything unknown: shown as written
    }
  });
}

function codeBlock(token) {
  const code = token.text;
  const language = (token.lang || "").split(/\s/)[0];
  return h("div.code-block", { "data-testid": "code-block" },
    h("div.code-head",
      h("span.code-language", language),
      h("button.copy-code", {
        type: "button",
        "data-testid": "copy-code",
        "aria-label": "Copy code",
        onclick: async (event) => {
          event.stopPropagation();
          toast(await copyText(code) ? "Copied" : "Could not copy");
        },
      }, "Copy")),
    h("pre", h("code", { "data-language": language || undefined }, code)));
}

function table(token) {
  const cell = (tag, item) => h(tag, { style: item.align ? { textAlign: item.align } : undefined }, inline(item.tokens));
  return h("div.table-scroll", { "data-testid": "markdown-table" },
    h("table",
      h("thead", h("tr", token.header.map((item) => cell("th", item)))),
      token.rows.length ? h("tbody", token.rows.map((row) => h("tr", row.map((item) => cell("td", item))))) : null));
}

function list(token) {
  const start = token.ordered && Number.isInteger(token.start) && token.start !== 1 ? token.start : undefined;
  return h(token.ordered ? "ol" : "ul", { start },
    token.items.map((item) => h("li", { class: item.task ? "task" : "" }, blocks(item.tokens))));
}

function blocks(tokens) {
  return (tokens || []).map((token) => {
    switch (token.type) {
      case "space":
      case "def":
        return null;
      case "paragraph": return h("p", inline(token.tokens));
      case "text": return token.tokens ? inline(token.tokens) : decodeReferences(token.text);
      case "heading": return h(`h${Math.min(Math.max(token.depth, 1), 6)}`, inline(token.tokens));
      case "code": return codeBlock(token);
      case "table": return table(token);
      case "list": return list(token);
      case "blockquote": return h("blockquote", blocks(token.tokens));
      case "hr": return h("hr");
      case "checkbox": return inline([token]);
      default: return h("p", token.raw); // block HTML and anything unknown: shown as written
    }
  });
}

/** Replace the children of `el` with `source` rendered. */
export function renderMarkdown(el, source) {
  return mount(el, blocks(Lexer.lex(source || "", LEXER_OPTIONS)));
}

/** A new element of the AI's answer. */
export function markdownElement(source, props = {}) {
  return renderMarkdown(h("div.text.markdown", props), source);
}

const streaming = new WeakMap();

/** For a text that grows many times a second (a streaming reply): at most one render per
 * STREAM_RENDER_EVERY_MS, always ending with the latest text. */
export function renderMarkdownThrottled(el, source) {
  let entry = streaming.get(el);
  if (!entry) {
    entry = { source, last: 0, timer: null };
    streaming.set(el, entry);
  }
  entry.source = source;
  if (entry.timer) return;
  const wait = entry.last + STREAM_RENDER_EVERY_MS - performance.now();
  const run = () => {
    entry.timer = null;
    entry.last = performance.now();
    renderMarkdown(el, entry.source);
  };
  if (wait <= 0) run();
  else entry.timer = setTimeout(run, wait);
}
