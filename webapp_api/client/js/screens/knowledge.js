// The assistant editor's documents panel (its owner's): the documents with their status and a
// progress bar fed by `knowledge_progress` frames, an upload (PDF, DOCX, HTML, Markdown, text),
// pasted text, and delete. Registered with the editor by app.js (registerKnowledgePanel).

import { api, request } from "../api.js";
import * as store from "../store.js";
import { h, mount, toast } from "../ui.js";

const ACCEPT = ".pdf,.docx,.html,.htm,.md,.markdown,.txt";

function documentRow(doc, remove) {
  const done = doc.status === "ready" ? doc.chunks : doc.embedded_chunks;
  const bar = h("progress", {
    max: Math.max(doc.chunks, 1), value: doc.status === "ready" ? Math.max(doc.chunks, 1) : done,
    "aria-label": `${doc.title}: ${doc.status}`, "data-testid": "document-progress",
  });
  const status = doc.status === "failed" ? `failed: ${doc.error || ""}` : doc.status === "ready"
    ? `ready · ${doc.chunks} ${doc.chunks === 1 ? "chunk" : "chunks"}` : doc.chunks ? `embedding ${doc.embedded_chunks}/${doc.chunks}` : "reading…";
  return h("li.document", { "data-testid": "document", "data-document-id": doc.id, "data-status": doc.status },
    h("span.body",
      h("span.row", h("span.name", { "data-testid": "document-title" }, doc.title)),
      h("span.row", h("span.preview", { "data-testid": "document-status" }, status)),
      doc.status === "processing" ? bar : null),
    h("button.button", { type: "button", "data-testid": "delete-document", onclick: () => remove(doc) }, "Delete"));
}

export function knowledgePanel(section, assistant) {
  const base = `/assistants/${assistant.id}/documents`;
  const docs = new Map();
  const list = h("ul.documents", { "data-testid": "documents" });
  const render = () => mount(list, ...[...docs.values()].map((doc) => documentRow(doc, remove)));

  async function remove(doc) {
    try {
      await api.del(`${base}/${doc.id}`);
      docs.delete(doc.id);
      render();
    } catch (error) {
      toast(error.message, "error");
    }
  }

  const file = h("input", { type: "file", accept: ACCEPT, "data-testid": "document-file", "aria-label": "Upload a document" });
  file.addEventListener("change", async () => {
    const chosen = file.files && file.files[0];
    if (!chosen) return;
    const form = new FormData();
    form.append("file", chosen, chosen.name);
    try {
      const doc = await request("POST", base, { form });
      docs.set(doc.id, doc);
      render();
    } catch (error) {
      toast(error.message, "error");
    }
    file.value = "";
  });

  const title = h("input", { type: "text", maxlength: 255, placeholder: "Title", "aria-label": "Title", "data-testid": "paste-title" });
  const text = h("textarea", { rows: 4, placeholder: "Paste text", "aria-label": "Text", "data-testid": "paste-text" });
  const paste = h("form.paste", { "data-testid": "paste-form" }, title, text,
    h("button.button", { type: "submit", "data-testid": "paste-send" }, "Add text"));
  paste.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const doc = await api.post(base, { title: title.value.trim(), text: text.value });
      docs.set(doc.id, doc);
      title.value = "";
      text.value = "";
      render();
    } catch (error) {
      toast(error.message, "error");
    }
  });

  mount(section, h("h3", "Knowledge"), list, h("label.button", "Upload a document", file), paste);
  const stop = store.on("knowledge", (frame) => {
    if (frame.assistant_id !== assistant.id) return;
    const doc = docs.get(frame.document_id);
    if (!doc) return;
    Object.assign(doc, {
      status: frame.status, chunks: frame.chunks, embedded_chunks: frame.embedded_chunks, error: frame.error,
    });
    render();
  });
  api.get(base).then((items) => {
    for (const doc of items) docs.set(doc.id, doc);
    render();
  }).catch((error) => toast(error.message, "error"));
  return stop;
}
