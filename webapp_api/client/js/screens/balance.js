// Balance: credits, what AI replies cost, Stars packages (openInvoice inside Telegram), the ledger.

import { api } from "../api.js";
import * as store from "../store.js";
import { icon } from "../icons.js";
import { h, mount, toast, credits, creditsText, formatTime } from "../ui.js";
import { backButton, openInvoice, haptics } from "../telegram.js";

const KIND_LABELS = { grant: "Free credits", deposit: "Top-up", usage: "AI reply", refund: "Refund", adjustment: "Adjustment" };

export function renderBalance(container, { navigate }) {
  backButton.show(() => navigate("/chats"));
  document.getElementById("title").textContent = "Balance";
  const page = h("div.page", { "data-testid": "balance" }, h("p.empty", "Loading…"));
  mount(container, page);
  let disposed = false;
  const balanceCard = h("section.card", { "aria-live": "polite" });
  const invoiceOut = h("div", { "data-testid": "invoice-box" });
  const txList = h("ul.chat-list", { "data-testid": "transactions" });
  let nextCursor = null;
  const moreButton = h("button.button.secondary.small", { type: "button", hidden: true, "data-testid": "transactions-more", onclick: () => loadTransactions(true) }, "Show older");

  function renderBalanceCard() {
    const b = store.state.balance;
    if (!b) return;
    mount(balanceCard,
      h("h2", "Available"),
      h("div.balance-big", { "data-testid": "balance-value", "data-micros": b.available }, creditsText(b.available)),
      b.reserved ? h("p.help", `${credits(b.reserved)} held for replies being written · total ${credits(b.balance)}`) : null);
  }

  /** Why no invoice could be made, in words a buyer can act on. */
  function invoiceProblem(error) {
    if (error.code === "bot_not_configured") return "Payments are not set up on this server yet.";
    if (error.code === "telegram_unavailable") return "Telegram could not create the invoice right now. Try again in a moment.";
    if (error.status === 0) return "No connection: try again when you are back online.";
    return `Could not create the invoice: ${error.message}`;
  }

  let buying = false;
  async function buy(pkg) {
    if (buying) return;
    buying = true;
    haptics.impact("light");
    invoiceOut.replaceChildren();
    try {
      const invoice = await api.post("/billing/invoice", { package: pkg.id });
      const opened = openInvoice(invoice.invoice_link, (status) => {
        if (status === "paid") {
          haptics.success();
          toast("Payment received: credits arrive in a moment");
          refreshBalance();
          loadTransactions(false);
        } else if (status === "failed") {
          haptics.error();
          toast("The payment failed", "error");
        }
      });
      if (!opened) {
        const link = String(invoice.invoice_link || "");
        mount(invoiceOut,
          h("p.help", "Open this invoice in Telegram to pay:"),
          /^https:\/\//.test(link)
            ? h("a.invoice-link", { href: link, target: "_blank", rel: "noopener", "data-testid": "invoice-link" }, link)
            : h("p.invoice-link", { "data-testid": "invoice-link" }, link));
      }
    } catch (error) {
      haptics.error();
      mount(invoiceOut, h("p.error-text", { role: "alert", "data-testid": "invoice-error" }, invoiceProblem(error)));
    } finally {
      buying = false;
    }
  }

  async function refreshBalance() {
    store.setBalance(await api.get("/billing/balance"));
  }

  async function loadTransactions(more) {
    const page_ = await api.get("/billing/transactions", { limit: 20, cursor: more ? nextCursor : undefined });
    nextCursor = page_.next_cursor;
    moreButton.hidden = !nextCursor;
    const rows = page_.items.map((tx) => h("li.tx", { "data-testid": "transaction-item" },
      h("div", h("div", KIND_LABELS[tx.kind] || tx.kind, tx.reason ? ` · ${tx.reason}` : ""), h("div.when", formatTime(tx.created_at))),
      h("div.amount", { class: tx.amount >= 0 ? "plus" : "minus" }, `${tx.amount >= 0 ? "+" : "−"}${credits(Math.abs(tx.amount))}`)));
    if (more) txList.append(...rows);
    else mount(txList, rows.length ? rows : h("li.empty", "No transactions yet"));
  }

  async function load() {
    const [prices] = await Promise.all([api.get("/billing/prices"), refreshBalance(), loadTransactions(false)]);
    if (disposed) return;
    renderBalanceCard();
    mount(page,
      balanceCard,
      prices.packages.length ? h("section.card",
        h("h2", "Top up with Telegram Stars"),
        h("div.packages", prices.packages.map((pkg) => h("button.package", {
          type: "button", "data-testid": "topup-button", "data-package": pkg.id, onclick: () => buy(pkg),
        }, h("span.stars", icon("star", 16), ` ${pkg.stars}`), h("span", pkg.title), h("span.gets", creditsText(pkg.credits))))),
        invoiceOut) : null,
      prices.models.length ? h("section.card",
        h("h2", "Prices per million tokens"),
        h("table.prices",
          h("thead", h("tr", h("th", { scope: "col" }, "Model"), h("th", { scope: "col" }, "Input"), h("th", { scope: "col" }, "Output"))),
          h("tbody", prices.models.map((m) => h("tr", h("td", m.display_name), h("td", credits(m.input_price)), h("td", credits(m.output_price))))))) : null,
      !prices.billing_enabled ? h("section.card", h("p.help", "Billing is off on this server: AI replies use a daily allowance.")) : null,
      h("section.card", h("h2", "History"), txList, moreButton));
  }

  load().catch((error) => mount(page, h("p.empty", { role: "alert" }, error.message)));
  const off = store.on("balance", () => {
    renderBalanceCard();
    loadTransactions(false).catch(() => null);
  });
  return () => {
    disposed = true;
    off();
  };
}
