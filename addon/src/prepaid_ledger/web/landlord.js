// The landlord UI: accounts listed live from the ledger's event stream. Paths are relative to
// <base>, so the page works under Home Assistant's ingress prefix and on its own.
"use strict";
// The list shows the server's pages (search, filter and sort run in the ledger: it may hold
// 10,000 rooms); known keeps every account the page has met, by id, for names elsewhere.
const PAGE = 50;
const state = { accounts: [], wanted: PAGE, known: new Map(), total: 0, next: null, sortKey: "name", descending: false, search: "", filter: "", selected: new Map(), open: null };
const $ = (selector) => document.querySelector(selector);

// ---- The page's language ---------------------------------------------------------------------
// The ledger renders the page in the reader's language and hands this script its words in a JSON
// data block (never executed: the page's CSP stays script-src 'self'). English is the text itself.
// t("Text with {name}", { name }) says a text, filling in its named values; scripts/translations
// extracts every t("...") into the same catalogs as the templates.
const WORDS = (() => {
  const block = document.getElementById("i18n");
  try { return (block && JSON.parse(block.textContent)) || {}; } catch { return {}; }
})();
const LANG = WORDS.locale || document.documentElement.lang || "en";
const ENGLISH = LANG === "en";
function t(text, values = {}) {
  const said = (WORDS.messages || {})[text] || text;
  return said.replace(/\{([a-z_]+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}
// Dates and numbers as the page's language writes them; English keeps the browser's own forms.
const moment = (iso) => new Date(iso).toLocaleString(ENGLISH ? undefined : LANG);
const day = (date) => new Date(date).toLocaleDateString(ENGLISH ? undefined : LANG);
const oneDecimal = (value) => (ENGLISH ? Number(value).toFixed(1)
  : new Intl.NumberFormat(LANG, { minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(Number(value)));
// What the ledger's codes mean (English: the code in words, as before).
const STATUS_WORDS = {
  pending: t("pending"), processing: t("processing"), succeeded: t("succeeded"), failed: t("failed"),
  expired: t("expired"), refunded: t("refunded"), partially_refunded: t("partially refunded"),
  needs_attention: t("needs attention"),
};
const SUPPLY_WORDS = {
  credit: t("credit"), emergency_credit: t("emergency credit"), protected: t("protected"), grace: t("grace"),
  friendly_hours: t("friendly hours"), holiday: t("holiday"), exhausted: t("exhausted"),
  awaiting_reconnect_margin: t("awaiting reconnect margin"), closed: t("closed"),
};
const KIND_WORDS = { flat: t("flat"), tou: t("tou"), tiered: t("tiered") };
const said = (words, code) => words[code] || String(code || "").replaceAll("_", " ");

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    credentials: "same-origin",
    headers: { "X-Requested-With": "prepaid-ledger", "Content-Type": "application/json", ...(options.headers || {}) },
  });
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const body = isJson ? await response.json() : await response.text();
  if (response.status === 401) { location.href = "login"; }
  if (!response.ok) {
    const error = new Error((body && body.error && body.error.message) || `HTTP ${response.status}`);
    error.code = (body && body.error && body.error.code) || "";
    error.field = (body && body.error && body.error.field) || "";
    error.status = response.status;
    throw error;
  }
  return body;
}

// Exact money from minor units, as the page's language writes it: charts.js's one formatter
// (loaded before this script), shared with the tenant page.
function money(minor, currency, exponent) { return LedgerCharts.money(minor, currency, exponent, LANG); }

function toMinor(text, exponent) {
  const clean = text.trim().replace(",", ".");
  const match = /^(\d{1,13})(?:\.(\d+))?$/.exec(clean);
  if (!match) { throw new Error(t("enter an amount such as 20 or 12.50")); }
  const fraction = match[2] || "";
  if (fraction.length > exponent) { throw new Error(t("use at most {count} decimal places", { count: exponent })); }
  const minor = Number(match[1] + fraction.padEnd(exponent, "0"));
  if (minor <= 0) { throw new Error(t("the amount must be more than zero")); }
  return minor;
}

function supplyText(account) {
  return account.supply.allowed ? t("On") : t("Off");
}

function remember(accounts) {
  for (const account of accounts) { state.known.set(account.id, account); }
  return accounts;
}

// Accounts by id for rows that name one (orders, batches, deliveries): fetched once each.
async function accountsById(ids) {
  const missing = [...new Set(ids)].filter((id) => id && !state.known.has(id));
  await Promise.all(missing.map((id) => api(`api/v1/accounts/${id}`).then((a) => remember([a])).catch(() => null)));
  return state.known;
}

// The list's query: search text, filter and sort, as the ledger's GET api/v1/accounts takes them.
function listQuery(limit) {
  const query = new URLSearchParams({ sort: (state.descending ? "-" : "") + state.sortKey, limit: String(limit) });
  if (state.search.trim()) { query.set("q", state.search.trim()); }
  const [name, value] = (state.filter || "=").split("=");
  if (name) { query.set(name, value); }
  if ($("#list-site").value) { query.set("site", $("#list-site").value); }
  return query;
}

// Sites (buildings with their own Home Assistant): a filter and a choice for new rooms, shown
// once the ledger serves more than one; each with its open rooms and how many are cut off.
async function loadSites() {
  const { sites } = await api("api/v1/sites");
  state.sites = new Map(sites.map((site) => [site.id, site.name]));
  const several = sites.length > 1;
  $("#list-site-box").hidden = $("#new-site-box").hidden = !several;
  if (!several) { $("#list-site").replaceChildren(new Option(t("All sites"), "")); $("#new-site").replaceChildren(); return; }
  const chosen = $("#list-site").value, placed = $("#new-site").value;
  $("#list-site").replaceChildren(new Option(t("All sites"), ""), ...sites.map((site) =>
    new Option(t("{name} ({off} of {rooms} cut off)", { name: site.name, rooms: site.accounts, off: site.supply_off }), site.id)));
  $("#new-site").replaceChildren(...sites.map((site) => new Option(site.name, site.id)));
  $("#list-site").value = chosen;
  if (placed) { $("#new-site").value = placed; }
}

let listRequest = 0;
// how: "new" (another search, filter or sort: the first page), "refresh" (a live update: as
// many rows as the landlord asked to see) or "more" (the next page). state.wanted is that
// count, set before the request: a live refresh that overtakes "Show more" then fetches the
// longer list itself instead of shrinking it back to one page.
async function loadAccounts(how = "new") {
  const more = how === "more";
  const mine = ++listRequest;
  if (how === "new") { state.wanted = PAGE; }
  if (more) { state.wanted = state.accounts.length + PAGE; }
  const query = listQuery(how === "refresh" ? Math.min(1000, Math.max(state.wanted, state.accounts.length)) : PAGE);
  if (more && state.next) { query.set("cursor", state.next); }
  const page = await api(`api/v1/accounts?${query}`);
  if (mine !== listRequest) { return; }  // a newer search answered first
  state.accounts = more ? state.accounts.concat(remember(page.accounts)) : remember(page.accounts);
  state.total = page.total;
  state.next = page.next_cursor;
  render();
}

let searchTimer = null;
function searchTyped(event) {
  state.search = event.target.value;
  clearTimeout(searchTimer);
  searchTimer = setTimeout(() => loadAccounts().catch(showLiveError), 200);
}

function render() {
  const body = $("#accounts tbody");
  body.replaceChildren(...state.accounts.map(row));
  $("#empty").hidden = state.accounts.length > 0;
  $("#empty").textContent = state.search || state.filter || $("#list-site").value ? t("No account matches.") : t("No accounts yet.");
  $("#list-count").textContent = state.accounts.length
    ? t("Showing {shown} of {total}", { shown: state.accounts.length, total: state.total }) : "";
  $("#more").hidden = !state.next;
  for (const button of document.querySelectorAll("button.sort")) {
    if (button.dataset.key === state.sortKey) {
      button.closest("th").setAttribute("aria-sort", state.descending ? "descending" : "ascending");
    } else { button.closest("th").removeAttribute("aria-sort"); }
  }
}

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) { td.className = className; }
  return td;
}

function row(account) {
  const tr = document.createElement("tr");
  tr.dataset.account = account.id;
  const pick = document.createElement("td");
  const box0 = document.createElement("input");
  box0.type = "checkbox";
  box0.className = "pick";
  box0.value = account.id;
  box0.checked = state.selected.has(account.id);
  box0.setAttribute("aria-label", t("Select {name}", { name: account.name }));
  box0.addEventListener("change", () => { if (box0.checked) { state.selected.set(account.id, account); } else { state.selected.delete(account.id); } });
  pick.append(box0);
  const nameCell = document.createElement("td");
  const open = document.createElement("button");
  open.className = "link";
  open.textContent = account.name;
  open.setAttribute("aria-label", t("Open {name}", { name: account.name }));
  open.addEventListener("click", () => openAccount(account));
  nameCell.append(open);
  if (state.sites && state.sites.size > 1) { nameCell.append(reasonSpan(state.sites.get(account.site_id) || "")); }
  tr.append(pick, nameCell, cell(account.number || ""));
  tr.append(cell(money(account.balance_minor, account.currency, account.currency_exponent),
    `num balance${account.balance_minor < 0 ? " negative" : ""}`));
  tr.append(cell(account.days_left === null || account.days_left === undefined ? "—" : oneDecimal(account.days_left), "num days-left"));
  const supply = cell(supplyText(account), account.supply.allowed ? "supply-on" : "supply-off");
  const reason = document.createElement("span");
  reason.className = "reason";
  reason.textContent = said(SUPPLY_WORDS, account.supply.reason) +
    (account.supply.changes_at ? " · " + t("changes {when}", { when: moment(account.supply.changes_at) }) : "");
  supply.append(reason);
  tr.append(supply);
  const last = account.last_topup;
  tr.append(cell(last ? `${money(last.amount_minor, last.currency, account.currency_exponent)} · ${day(last.at)}` : "—"));
  const actions = document.createElement("td");
  const box = document.createElement("div");
  box.className = "actions";
  const topup = document.createElement("button");
  topup.textContent = t("Top up");
  topup.setAttribute("aria-label", t("Top up {name}", { name: account.name }));
  topup.addEventListener("click", () => openTopup(account));
  const link = document.createElement("button");
  link.textContent = t("Pay link");
  link.className = "secondary";
  link.setAttribute("aria-label", t("Pay link for {name}", { name: account.name }));
  link.addEventListener("click", () => openPayLink(account));
  box.append(topup, link);
  actions.append(box);
  tr.append(actions);
  if (account.status !== "open") { topup.disabled = link.disabled = true; }
  return tr;
}

async function load() {
  await loadSites();
  await loadAccounts("refresh");
  const overview = typeof loadOverview === "function" ? loadOverview() : null;  // landlord_overview.js
  await Promise.all([loadOrders(), loadTariffs(), loadBatches(), fillVoucherAccounts(), overview]);
  if (state.open) {
    const fresh = await api(`api/v1/accounts/${state.open.id}`).catch(() => null);
    if (fresh) { remember([fresh]); await openAccount(fresh, false); }
  }
}

// ---- Batch top-up ----------------------------------------------------------------------------
async function batchTopup(event) {
  event.preventDefault();
  $("#batch-error").textContent = "";
  const chosen = [...state.selected.values()];
  if (!chosen.length) { $("#batch-error").textContent = t("tick at least one room in the list"); return; }
  const reference = $("#batch-reference").value.trim();
  let items;
  try {
    items = chosen.map((a) => ({
      account: a.id,
      amount_minor: toMinor($("#batch-amount").value, a.currency_exponent),
      ...(reference ? { reference: `${reference} / ${a.number || a.id}` } : {}),
    }));
  } catch (error) { $("#batch-error").textContent = error.message; return; }
  try {
    const result = await api("api/v1/topups/batch", {
      method: "POST",
      headers: { "Idempotency-Key": `ui-batch-${Date.now()}-${Math.random().toString(36).slice(2)}` },
      body: JSON.stringify({ items }),
    });
    $("#batch-results").replaceChildren(...result.results.map((r) => {
      const li = document.createElement("li");
      const account = chosen[r.index];
      li.textContent = r.ok ? t("{name}: credited (order #{order})", { name: account.name, order: r.order.id })
        : t("{name}: not credited, {error}", { name: account.name, error: r.error.message });
      li.className = r.ok ? "supply-on" : "error";
      return li;
    }));
    state.selected.clear();
    scheduleReload();
  } catch (error) { $("#batch-error").textContent = error.message; }
}

// ---- Account page ----------------------------------------------------------------------------
const BAND_COLOURS = ["#03a9f4", "#ff9800", "#8bc34a", "#9c27b0", "#e91e63", "#607d8b"];
// The cost chart's period, chosen with its buttons; it stays while the page lives.
let chartDays = 30;
// Standing charges are drawn as a band of their own (a key no tariff band can have).
const STANDING = "\u0000standing";
const bandLabel = (band) => (band === STANDING ? t("standing charge") : band);

function monthBounds(account) {
  const now = new Date();
  const first = new Date(now.getFullYear(), now.getMonth(), 1);
  const pad = (n) => String(n).padStart(2, "0");
  const iso = (d) => `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return { monthFrom: iso(first), to: iso(new Date(now.getTime() + 86400000)) };
}

// Each of DAYS' cost by tariff band, as stacked bars (charts.js, uPlot) and as a table with the
// same numbers (the days something was charged) for screen readers and for exact amounts.
function drawChart(statement, exponent, days) {
  const currency = statement.currency;
  const shown = new Set(days);
  const costs = new Map();  // day -> band -> minor units
  const add = (day, band, minor) => {
    if (!shown.has(day)) { return; }  // a line of the day before, charged after its midnight
    const bands = costs.get(day) || new Map();
    bands.set(band, (bands.get(band) || 0) + minor);
    costs.set(day, bands);
  };
  for (const line of statement.consumption) { add(line.day, line.band, line.amount_minor); }
  for (const line of statement.standing_charges) { add(line.day, STANDING, line.amount_minor); }
  const bands = [...new Set([...statement.consumption.map((l) => l.band), STANDING])]
    .filter((band) => [...costs.values()].some((byBand) => byBand.has(band)));
  const colour = (i) => BAND_COLOURS[i % BAND_COLOURS.length];
  LedgerCharts.draw($("#account-chart"), {
    days,
    locale: LANG,
    bars: bands.map((band, i) => ({
      label: bandLabel(band),
      colour: colour(i),
      values: days.map((day) => (costs.has(day) ? costs.get(day).get(band) || 0 : null)),
    })),
    money: (minor) => money(minor, currency, exponent),
  });
  $("#account-legend").replaceChildren(...bands.map((band, i) => {
    const span = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = colour(i);
    span.append(swatch, bandLabel(band));
    return span;
  }));
  const head = document.createElement("tr");
  head.append(...[t("Day"), ...bands.map(bandLabel), t("Total")].map((text, i) => {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = text;
    if (i) { th.className = "num"; }
    return th;
  }));
  const charged = days.filter((day) => costs.has(day));
  $("#account-chart-table thead").replaceChildren(head);
  $("#account-chart-table tbody").replaceChildren(...charged.map((day) => {
    const byBand = costs.get(day);
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = LedgerCharts.dayText(day, LANG);
    const total = [...byBand.values()].reduce((sum, minor) => sum + minor, 0);
    const tr = document.createElement("tr");
    tr.append(th, ...bands.map((band) => cell(money(byBand.get(band) || 0, currency, exponent), "num")),
      cell(money(total, currency, exponent), "num"));
    return tr;
  }));
  $("#account-chart-table").hidden = !charged.length;
  $("#account-chart-empty").hidden = charged.length > 0;
}

// The account's statement over the chosen period (its own local days, whatever the browser's
// time zone), drawn; an answer for another account or period that arrives late is dropped.
async function showChart(account) {
  const period = chartDays;
  const days = LedgerCharts.daysUpTo(LedgerCharts.today(account.timezone), period);
  const statement = await api(`api/v1/accounts/${account.id}/statement?from=${days[0]}`);
  if (period === chartDays && state.open && state.open.id === account.id) {
    drawChart(statement, account.currency_exponent, days);
  }
}

for (const button of document.querySelectorAll("#account-range button")) {
  button.addEventListener("click", () => {
    chartDays = Number(button.dataset.days);
    for (const other of document.querySelectorAll("#account-range button")) {
      other.setAttribute("aria-pressed", String(other === button));
    }
    if (state.open) { showChart(state.open).catch((error) => { $("#account-chart").textContent = error.message; }); }
  });
}

async function openAccount(account, scroll = true) {
  state.open = account;
  const section = $("#account-page");
  section.hidden = false;
  $("#account-pay-link-notice").hidden = payLinksReady();
  if (scroll) {  // another account opened: the cash-sale form starts empty
    $("#account-voucher-code").value = "";
    $("#account-voucher-error").textContent = "";
    $("#account-voucher-result").textContent = "";
  }
  $("#account-voucher-submit").disabled = account.status !== "open";
  $("#account-moveout").disabled = $("#account-pay-link").disabled = account.status !== "open";  // landlord_moves.js
  if (typeof showRoomMeters === "function") {  // landlord_room.js
    showRoomMeters(account).catch((error) => { $("#account-meters-error").textContent = error.message; });
  }
  const exponent = account.currency_exponent;
  $("#account-title").textContent = account.name;
  $("#account-summary").textContent = t("Account number {number} · balance {balance} · supply {supply} ({reason})", {
    number: account.number || "—",
    balance: money(account.balance_minor, account.currency, exponent),
    supply: ENGLISH ? supplyText(account).toLowerCase() : supplyText(account),
    reason: said(SUPPLY_WORDS, account.supply.reason),
  });
  const bounds = monthBounds(account);
  const [orders] = await Promise.all([
    api(`api/v1/topups?account=${account.id}&limit=10`),
    showChart(account),
  ]);
  const detailed = await Promise.all(orders.topups.map((o) => api(`api/v1/topups/${o.id}`)));
  $("#account-topups").replaceChildren(...(detailed.length ? detailed.map((order) => {
    const div = document.createElement("div");
    div.className = "order";
    div.textContent = `#${order.id} · ${money(order.amount_minor, order.currency, exponent)} · ${said(STATUS_WORDS, order.status)}: `;
    div.append(document.createTextNode(order.timeline.map((step) => `${ENGLISH ? step.status : said(STATUS_WORDS, step.status)} ${moment(step.at)}`).join(" → ")));
    if (order.receipt) {  // a printable receipt for every credited order
      const link = document.createElement("a");
      link.href = `ui/receipts/${order.receipt.number}`;
      link.target = "_blank";
      link.rel = "noopener";
      link.textContent = t("receipt {number}", { number: order.receipt.number });
      div.append(" · ", link);
    }
    return div;
  }) : [document.createTextNode(t("No top-ups yet."))]));
  $("#account-csv").href = `api/v1/accounts/${account.id}/statement?format=csv&from=${bounds.monthFrom}&to=${bounds.to}`;
  $("#account-csv").download = `statement-${account.number || account.id}.csv`;
  // A live refresh re-renders the same account: the printable statement asked for stays; it
  // goes only when another account is opened.
  if (scroll) {
    $("#account-statement").replaceChildren();
    section.scrollIntoView();
  }
}

async function printStatement() {
  const account = state.open;
  const bounds = monthBounds(account);
  const statement = await api(`api/v1/accounts/${account.id}/statement?from=${bounds.monthFrom}&to=${bounds.to}`);
  const e = account.currency_exponent, c = statement.currency;
  const table = document.createElement("table");
  table.className = "statement";
  const add = (label, value) => { const tr = document.createElement("tr"); tr.append(cell(label), cell(value, "num")); table.append(tr); };
  add(t("Statement for {name}, account {number}", { name: account.name, number: account.number || account.id }), `${statement.from || ""} – ${statement.to || ""}`);
  add(t("Opening balance"), money(statement.opening_balance_minor, c, e));
  for (const line of statement.consumption) { add(`${line.day} ${line.band}: ${line.quantity}`, money(-line.amount_minor, c, e)); }
  for (const line of statement.standing_charges) { add(t("{day} standing charge", { day: line.day }), money(-line.amount_minor, c, e)); }
  // Every money line, so the printed statement adds up like the ledger's (opening + lines = closing).
  for (const section of ["topups", "bonuses", "refunds", "adjustments", "settlements"]) {
    for (const line of statement[section] || []) { add(`${line.at.slice(0, 10)} ${line.description}`, money(line.amount_minor, c, e)); }
  }
  add(t("Closing balance"), money(statement.closing_balance_minor, c, e));
  $("#account-statement").replaceChildren(table);
  document.body.classList.add("print-statement");
  window.print();
  document.body.classList.remove("print-statement");
}

// ---- Orders board ----------------------------------------------------------------------------
const ACTIONS = [
  ["recheck", t("Re-check with provider")],
  ["credit", t("Credit to an account…")],
  ["refund", t("Refund")],
  ["fail", t("Mark failed")],
];

// Why an order needs a person, in plain words (the ledger's attention_code).
const ATTENTION_REASONS = {
  unknown_account: t("Unknown account: no account has the number the payer typed"),
  closed_account: t("Closed account: the payment is for an account that is closed"),
  currency_mismatch: t("Currency mismatch: paid in another currency than the account uses"),
  invalid_amount: t("Amount problem: the amount cannot be credited as it is"),
  stuck_processing: t("Stuck with the payment provider: no final answer from it"),
  paid_not_credited: t("Paid late: the provider confirmed it after the order had failed or expired"),
};

function attentionCode(order) {
  if (order.attention_code) { return order.attention_code; }
  const why = (order.attention_reason || "").toLowerCase();  // a ledger without codes
  if (why.startsWith("cannot credit")) { return "unknown_account"; }
  if (why.includes("closed")) { return "closed_account"; }
  if (why.includes("currency")) { return "currency_mismatch"; }
  if (why.includes("amount")) { return "invalid_amount"; }
  if (why.includes("processing") || why.includes("provider")) { return "stuck_processing"; }
  return "";
}

function plainReason(order) {
  if (order.status === "processing") { return t("Waiting for the payment provider"); }
  if (order.status === "pending") { return t("Checkout opened, not paid yet"); }
  const code = attentionCode(order);
  if (code === "unknown_account" && /check digit/i.test(order.attention_reason || "")) {
    return t("Unknown account: the number the payer typed has a typo (its check digit is wrong)");
  }
  return ATTENTION_REASONS[code] || t("The ledger could not credit this payment on its own");
}

function age(iso) {
  const minutes = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60000));
  return minutes < 90 ? t("{count} min", { count: minutes }) : minutes < 2880 ? t("{count} h", { count: Math.round(minutes / 60) })
    : t("{count} d", { count: Math.round(minutes / 1440) });
}

// Decimal places of a currency: from an account in it, else what the browser knows (ISO 4217).
function exponentOf(currency) {
  const account = [...state.known.values()].find((a) => a.currency === currency);
  if (account) { return account.currency_exponent; }
  try {
    return new Intl.NumberFormat("en", { style: "currency", currency }).resolvedOptions().maximumFractionDigits;
  } catch { return 2; }
}

// What the payer typed as the account, when it is not simply the account's own number.
function typedRef(order, account) {
  const typed = String(order.account_ref || "").trim();
  if (!typed || (account && (typed === String(account.id) || normalizeNumber(typed) === account.number))) { return ""; }
  return typed;
}

function reasonSpan(text, className = "reason") {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  return span;
}

async function loadOrders() {
  const lists = await Promise.all(["needs_attention", "processing", "pending"].map(
    (status) => api(`api/v1/topups?status=${status}&limit=1000`)));
  const orders = lists.flatMap((list) => list.topups);
  const names = await accountsById(orders.map((o) => o.account_id));
  const rows = orders.map((order) => {
    const tr = document.createElement("tr");
    tr.dataset.order = order.id;
    const account = names.get(order.account_id);
    tr.append(cell(`#${order.id} · ${order.source}`));
    const who = cell(account ? account.name : order.account_id ? t("account {id}", { id: order.account_id }) : t("no account"));
    const typed = typedRef(order, account);
    if (typed) { who.append(reasonSpan(t("payer typed: {typed}", { typed }), "reason typed")); }
    else if (!account && !order.account_id) { who.append(reasonSpan(t("the payment named no account number"), "reason typed")); }
    tr.append(who);
    const amount = cell(money(order.amount_minor, order.currency, exponentOf(order.currency)), "num amount");
    if (order.bonus) { amount.append(reasonSpan(t("+ {amount} bonus ({promotion})", { amount: money(order.bonus.amount_minor, order.currency, exponentOf(order.currency)), promotion: order.bonus.promotion_name }), "reason bonus")); }
    tr.append(amount);
    const status = cell(said(STATUS_WORDS, order.status), `status status-${order.status}`);
    status.append(reasonSpan(plainReason(order), "reason plain"));
    if (order.attention_reason) { status.append(reasonSpan(order.attention_reason, "reason detail")); }
    tr.append(status, cell(age(order.created_at), "age"));
    const td = document.createElement("td");
    const box = document.createElement("div");
    box.className = "actions";
    for (const [action, label] of ACTIONS) {
      if (action === "refund" && order.credited_minor - order.refunded_minor <= 0) { continue; }
      if (action === "recheck" && order.provider !== "stripe") { continue; }
      const button = document.createElement("button");
      button.textContent = label;
      button.className = action === "credit" ? "" : "secondary";
      button.setAttribute("aria-label", t("{action}: order {id}", { action: label.replace("…", ""), id: order.id }));
      button.addEventListener("click", () => (action === "credit" ? openCredit(order) : openAction(order, action, label)));
      box.append(button);
    }
    td.append(box);
    tr.append(td);
    return tr;
  });
  $("#orders tbody").replaceChildren(...rows);
  $("#orders-empty").hidden = rows.length > 0;
}

let pendingAction = null;
function openAction(order, action, label) {
  pendingAction = { order, action };
  $("#action-title").textContent = label;
  $("#action-order").textContent = t("Order #{id}: {status}", { id: order.id, status: said(STATUS_WORDS, order.status) }) +
    (order.attention_reason ? ` (${order.attention_reason})` : "");
  $("#action-reason").value = "";
  $("#action-error").textContent = "";
  $("#action-confirm").textContent = t("Confirm: {action}", { action: ENGLISH ? label.toLowerCase() : label });
  $("#action-dialog").showModal();
}

async function submitAction(event) {
  event.preventDefault();
  const reason = $("#action-reason").value.trim();
  if (!reason) { $("#action-error").textContent = t("a reason is required"); return; }
  const { order, action } = pendingAction;
  try {
    await api(`api/v1/topups/${order.id}/actions`, {
      method: "POST",
      headers: { "Idempotency-Key": `ui-${Date.now()}-${Math.random().toString(36).slice(2)}` },
      body: JSON.stringify({ action, reason }),
    });
    $("#action-dialog").close();
    scheduleReload();
  } catch (error) {
    $("#action-error").textContent = error.message;
  }
}

// ---- Account numbers: the ledger's rule (domain/account_number.py), checked as people type ----
// Damm's operation table: row = interim digit, column = next digit. A valid number (body plus
// check digit) ends at interim 0; one wrong digit or two swapped neighbours never do.
const DAMM = [
  [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
  [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
  [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
  [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
  [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
  [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
  [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
  [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
  [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
  [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];
const NUMBER_MIN_LENGTH = 9;   // len(str(NUMBER_BASE)) + 1
const NUMBER_MAX_LENGTH = 20;

function normalizeNumber(text) { return String(text).replace(/[ \t\u00a0-]/g, ""); }

function dammCheckDigit(digits) {
  let interim = 0;
  for (const char of digits) { interim = DAMM[interim][char.charCodeAt(0) - 48]; }
  return interim;
}

function isValidAccountNumber(text) {
  const number = normalizeNumber(text);
  return number.length >= NUMBER_MIN_LENGTH && number.length <= NUMBER_MAX_LENGTH &&
    /^[0-9]+$/.test(number) && number[0] !== "0" && dammCheckDigit(number) === 0;
}

// What the typed text is: a name or part of a number still being typed ({}), a complete valid
// number ({ number }), or a number that cannot be right ({ error }).
function checkTyped(text) {
  const number = normalizeNumber(text);
  if (!/^[0-9]+$/.test(number) || number.length < NUMBER_MIN_LENGTH) { return {}; }
  if (number.length > NUMBER_MAX_LENGTH) { return { error: t("an account number has at most {count} digits", { count: NUMBER_MAX_LENGTH }) }; }
  if (number[0] === "0") { return { error: t("an account number never starts with 0") }; }
  if (!isValidAccountNumber(number)) { return { error: t("check digit wrong: please check the number for a typo") }; }
  return { number };
}

const groupNumber = (number) => (String(number || "").match(/.{1,3}/g) || []).join(" ");

// ---- Credit an order to an account -----------------------------------------------------------
const credit = { order: null, account: null, number: null };
const CREDIT_ACCOUNT_ERRORS = new Set([
  "invalid_account_number", "unknown_account", "invalid_account", "account_closed", "currency_mismatch",
]);

function creditFieldError(id, message) {
  $(`#credit-${id}-error`).textContent = message;
  const input = $(`#credit-${id}`);
  if (message) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
}

function creditable(account, order) {
  if (account.status !== "open") { return t("closed"); }
  if (account.currency !== order.currency) { return t("{currency} account: this payment is {paid}", { currency: account.currency, paid: order.currency }); }
  return "";
}

function showChosen() {
  const { account, number } = credit;
  $("#credit-chosen").textContent = account
    ? t("Credit to: {name}, account {number}", { name: account.name, number: groupNumber(account.number) || account.id })
    : number ? t("Credit to account number {number} (not in the list: the ledger checks it)", { number: groupNumber(number) }) : "";
}

function chooseCreditAccount(account) {
  credit.account = account;
  credit.number = null;
  $("#credit-account").value = account.number || String(account.id);
  creditFieldError("account", "");
  $("#credit-matches").replaceChildren();
  showChosen();
}

// Open accounts matching what the landlord typed (name or number), searched by the ledger.
async function creditMatches(text) {
  const needle = text.trim();
  if (!needle) { return []; }
  const query = new URLSearchParams({ q: needle, status: "open", sort: "name", limit: "8" });
  return remember((await api(`api/v1/accounts?${query}`)).accounts);
}

function renderCreditMatches(matches) {
  $("#credit-matches").replaceChildren(...matches.map((account) => {
    const li = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "match secondary";
    const problem = creditable(account, credit.order);
    button.textContent = `${account.name} · ${groupNumber(account.number)} · ${money(account.balance_minor, account.currency, account.currency_exponent)}${problem ? ` (${problem})` : ""}`;
    button.setAttribute("aria-label", t("Choose {name}", { name: button.textContent }));  // the visible text in the name
    button.disabled = Boolean(problem);
    button.addEventListener("click", () => chooseCreditAccount(account));
    li.append(button);
    return li;
  }));
}

let creditSearch = 0;
async function creditTyping() {
  const text = $("#credit-account").value;
  const mine = ++creditSearch;
  credit.account = null;
  credit.number = null;
  const typed = checkTyped(text);
  creditFieldError("account", typed.error || "");
  // A full, well-formed number can be sent at once (the ledger checks it); the search below
  // may then name its account, or say why it cannot take this payment.
  credit.number = typed.number || null;
  showChosen();
  const matches = typed.error ? [] : await creditMatches(text).catch(() => []);
  if (mine !== creditSearch) { return; }  // the landlord typed on meanwhile
  if (typed.number) {
    const exact = matches.find((a) => a.number === typed.number);
    const problem = exact && creditable(exact, credit.order);
    if (exact) { credit.number = null; }
    if (exact && !problem) { credit.account = exact; }
    else if (exact) { creditFieldError("account", `${exact.name}: ${problem}`); }
  }
  renderCreditMatches(matches);
  showChosen();
}

// Enter in the search field picks the only match instead of submitting without an account.
function creditKey(event) {
  if (event.key !== "Enter" || credit.account || credit.number) { return; }
  const enabled = [...document.querySelectorAll("#credit-matches button:not([disabled])")];
  if (enabled.length === 1) { event.preventDefault(); enabled[0].click(); }
}

function openCredit(order) {
  const account = state.known.get(order.account_id);
  credit.order = order;
  credit.account = null;
  credit.number = null;
  const typed = typedRef(order, account);
  const amount = money(order.amount_minor, order.currency, exponentOf(order.currency));
  const what = typed ? t("Order #{id}: {amount}, the payer typed {typed}.", { id: order.id, amount, typed })
    : account ? t("Order #{id}: {amount} for {name}.", { id: order.id, amount, name: account.name })
      : t("Order #{id}: {amount}.", { id: order.id, amount });
  $("#credit-order").textContent = what + (LANG.startsWith("zh") ? "" : " ") + t("{reason}.", { reason: plainReason(order) });
  $("#credit-account").value = "";
  $("#credit-reason").value = "";
  creditFieldError("account", "");
  creditFieldError("reason", "");
  $("#credit-error").textContent = "";
  $("#credit-matches").replaceChildren();
  if (account && !creditable(account, order)) { chooseCreditAccount(account); }
  showChosen();
  $("#credit-dialog").showModal();
  $("#credit-account").focus();
}

async function submitCredit(event) {
  event.preventDefault();
  const { order } = credit;
  creditFieldError("reason", "");
  $("#credit-error").textContent = "";
  const target = credit.account ? credit.account.id : credit.number;
  const reason = $("#credit-reason").value.trim();
  let refused = false;
  if (target === null) {
    const typed = checkTyped($("#credit-account").value);
    creditFieldError("account", $("#credit-account-error").textContent || typed.error ||
      t("choose an account from the matches, or type its full account number"));
    refused = true;
  }
  if (!reason) { creditFieldError("reason", t("a reason is required")); refused = true; }
  if (refused) { (target === null ? $("#credit-account") : $("#credit-reason")).focus(); return; }
  const button = $("#credit-confirm");
  button.disabled = true;
  try {
    await api(`api/v1/topups/${order.id}/actions`, {
      method: "POST",
      headers: { "Idempotency-Key": `ui-credit-${Date.now()}-${Math.random().toString(36).slice(2)}` },
      body: JSON.stringify({ action: "credit", account: target, reason }),
    });
    $("#credit-dialog").close();
    const row = document.querySelector(`#orders tr[data-order='${order.id}']`);
    if (row) { row.remove(); }
    $("#orders-empty").hidden = document.querySelectorAll("#orders tbody tr").length > 0;
    scheduleReload();
  } catch (error) {
    if (CREDIT_ACCOUNT_ERRORS.has(error.code) || /^account\b/.test(error.message)) {
      creditFieldError("account", error.message);
      $("#credit-account").focus();
    } else if (/^reason\b/.test(error.message)) {
      creditFieldError("reason", error.message);
      $("#credit-reason").focus();
    } else {
      $("#credit-error").textContent = t("Not credited: {error}", { error: error.message });
    }
  } finally {
    button.disabled = false;
  }
}

// ---- Tariffs ---------------------------------------------------------------------------------
let tariffs = [];
async function loadTariffs() {
  tariffs = (await api("api/v1/tariffs")).tariffs;
  $("#tariffs tbody").replaceChildren(...tariffs.map((one) => {
    const tr = document.createElement("tr");
    const price = one.kind === "flat" ? `${one.price} ${one.currency}/${one.unit}`
      : one.kind === "tou" ? one.segments.map((s) => t("{band} from {start}: {price}", { band: s.band, start: s.start, price: s.price })).join(", ") : t("by tier");
    tr.append(cell(one.name), cell(said(KIND_WORDS, one.kind)), cell(price, "num"),
      cell(one.versions.map((v) => `${versionStart(v.effective_from)}${v.price ? `: ${v.price}` : ""}`).join(" → ")));
    return tr;
  }));
  const select = $("#price-tariff");
  const chosen = select.value;
  select.replaceChildren(...tariffs.filter((one) => one.kind === "flat").map((one) => new Option(one.name, one.id)));
  if (chosen) { select.value = chosen; }
}

// The ledger names the field at fault first ("price must be ..."): show it next to that field.
function showFieldError(form, prefix, message) {
  for (const input of form.querySelectorAll("input[name], textarea[name]")) {
    if (message.startsWith(`${input.name} `) || message.startsWith(`${input.name}[`)) {
      $(`#${prefix}-${input.name}-error`).textContent = message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
  }
  $(`#${prefix}-error`).textContent = message;
}

// Clear a form's messages (its fields' and the one below it, #PREFIX-error) before a new try.
function clearErrors(form, prefix) {
  for (const el of form.querySelectorAll(".field-error")) { el.textContent = ""; }
  for (const el of form.querySelectorAll("[aria-invalid]")) { el.removeAttribute("aria-invalid"); }
  $(`#${prefix}-error`).textContent = "";
}

// A tariff's first version applies from the start of time (the ledger says 1970-01-01).
function versionStart(iso) {
  return new Date(iso).getTime() <= 0 ? t("from the start") : day(iso);
}

async function createTariff(event) {
  event.preventDefault();
  const form = event.target;
  clearErrors(form, "tariff");
  const currency = form.currency.value.trim().toUpperCase();
  const standing = form.standing_charge_minor_per_day.value.trim();
  let standingMinor = 0;  // entered in the currency's major unit, e.g. 0.15 EUR a day
  if (standing && !/^0+([.,]0*)?$/.test(standing)) {
    try { standingMinor = toMinor(standing, exponentOf(/^[A-Z]{3}$/.test(currency) ? currency : "EUR")); }
    catch (error) {
      $("#tariff-standing_charge_minor_per_day-error").textContent = t("standing charge: {error}", { error: error.message });
      form.standing_charge_minor_per_day.setAttribute("aria-invalid", "true");
      form.standing_charge_minor_per_day.focus();
      return;
    }
  }
  const body = {
    name: form.name.value.trim(),
    currency,
    unit: form.unit.value,
    kind: form.kind.value,
    standing_charge_minor_per_day: standingMinor,
  };
  if (body.kind === "tou") {
    // "07:00 0.32 day" per line; the ledger checks the times, prices and order.
    body.segments = form.segments.value.split("\n").map((line) => line.trim()).filter(Boolean).map((line) => {
      const [start, price, ...band] = line.split(/\s+/);
      return { start, price: (price || "").replace(",", "."), ...(band.length ? { band: band.join(" ") } : {}) };
    });
  } else {
    body.price = form.price.value.trim().replace(",", ".");
  }
  try {
    await api("api/v1/tariffs", { method: "POST", body: JSON.stringify(body) });
    form.name.value = "";
    form.price.value = "";
    form.segments.value = "";
    await loadTariffs();
  } catch (error) {
    showFieldError(form, "tariff", error.message);
  }
}

async function changePrice(event) {
  event.preventDefault();
  $("#price-error").textContent = "";
  const tariff = tariffs.find((one) => String(one.id) === $("#price-tariff").value);
  const when = $("#price-from").value;
  if (!tariff) { $("#price-error").textContent = t("create a flat tariff first"); return; }
  if (!when) { $("#price-error").textContent = t("choose the date and time the new price applies from"); return; }
  const { id, created_at, versions, ...definition } = tariff;
  try {
    await api(`api/v1/tariffs/${tariff.id}/versions`, {
      method: "POST",
      body: JSON.stringify({ ...definition, price: $("#price-new").value.trim().replace(",", "."), effective_from: new Date(when).toISOString() }),
    });
    $("#price-new").value = "";
    await loadTariffs();
  } catch (error) {
    $("#price-error").textContent = error.message;
  }
}

// ---- Vouchers --------------------------------------------------------------------------------
// Minting is an ordinary form POST (ui/vouchers/mint) that opens the printable cards in a new
// tab: the codes exist only in that answer. The script checks the form first, so a typo never
// reaches the ledger, and gives each sending an id so a reload of the cards tab mints nothing.
const MAX_BATCH_VOUCHERS = 1000;
let voucherBatches = [];

function voucherFieldError(name, message) {
  $(`#voucher-${name}-error`).textContent = message;
  const input = $(`#voucher-${name}`);
  if (message) { input.setAttribute("aria-invalid", "true"); } else { input.removeAttribute("aria-invalid"); }
}

// The accounts offered for a batch: the open ones matching the search box beside the list
// (the first few by name when it is empty), keeping the one already chosen.
async function fillVoucherAccounts() {
  const select = $("#voucher-account");
  const chosen = select.value;
  const query = new URLSearchParams({ status: "open", sort: "name", limit: "20" });
  const text = $("#voucher-account-search").value.trim();
  if (text) { query.set("q", text); }
  const found = remember((await api(`api/v1/accounts?${query}`)).accounts);
  const kept = chosen && !found.some((a) => String(a.id) === chosen) ? [state.known.get(Number(chosen))].filter(Boolean) : [];
  select.replaceChildren(new Option(t("Any account"), ""), ...kept.concat(found)
    .map((a) => new Option(`${a.name} · ${a.number || a.id} (${a.currency})`, a.id)));
  select.value = chosen;
  if (select.value !== chosen) { select.value = ""; }
}

function voucherAccountChosen() {
  const account = state.known.get(Number($("#voucher-account").value));
  if (account) { $("#voucher-currency").value = account.currency; }
  voucherCurrencyTyped();
}

function voucherCurrencyTyped() {
  $("#voucher-value-currency").textContent = $("#voucher-currency").value.trim().toUpperCase() || "?";
}

function checkVoucherForm() {
  let first = null;
  const refuse = (name, message) => { voucherFieldError(name, message); first = first || $(`#voucher-${name}`); };
  for (const name of ["value", "currency", "count", "expires"]) { voucherFieldError(name, ""); }
  $("#voucher-error").textContent = "";
  const currency = $("#voucher-currency").value.trim().toUpperCase();
  if (!/^[A-Z]{3}$/.test(currency)) { refuse("currency", t("currency must be an ISO 4217 code such as EUR")); }
  else {
    try { toMinor($("#voucher-value").value, exponentOf(currency)); }
    catch (error) { refuse("value", t("value: {error}", { error: error.message })); }
  }
  const count = $("#voucher-count").value.trim();
  if (!/^[0-9]{1,6}$/.test(count) || Number(count) < 1 || Number(count) > MAX_BATCH_VOUCHERS) {
    refuse("count", t("count must be a whole number from 1 to {max}", { max: MAX_BATCH_VOUCHERS }));
  }
  const expires = $("#voucher-expires").value;
  if (expires) {
    const pad = (n) => String(n).padStart(2, "0");
    const now = new Date();
    const today = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
    if (expires < today) { refuse("expires", t("the expiry date must not lie in the past")); }
  }
  const account = state.known.get(Number($("#voucher-account").value));
  if (account && account.currency !== currency) { refuse("currency", t("the chosen account is in {currency}", { currency: account.currency })); }
  if (first) { first.focus(); }
  return !first;
}

function mintVouchers(event) {
  if (!checkVoucherForm()) { event.preventDefault(); return; }
  $("#voucher-currency").value = $("#voucher-currency").value.trim().toUpperCase();
  event.target.action = `ui/vouchers/mint?request=ui-mint-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  // The form goes to the cards tab as it is; the list here shows the new batch shortly.
  setTimeout(() => { $("#voucher-value").value = ""; $("#voucher-note").value = ""; loadBatches().catch(showBatchesError); }, 1500);
}

function showBatchesError(error) { $("#voucher-batches-error").textContent = error.message; }

function localDay(iso) {
  // A batch ends at midnight after its last day: show that last day.
  return day(new Date(iso).getTime() - 1);
}

async function loadBatches() {
  voucherBatches = (await api("api/v1/vouchers/batches")).batches;
  $("#voucher-batches-error").textContent = "";
  const names = Object.fromEntries([...(await accountsById(voucherBatches.map((b) => b.account_id))).entries()]);
  $("#voucher-batches tbody").replaceChildren(...voucherBatches.map((batch) => {
    const tr = document.createElement("tr");
    tr.dataset.batch = batch.id;
    const account = batch.account_id ? names[batch.account_id] : null;
    const expired = batch.expires_at && new Date(batch.expires_at) <= new Date();
    const status = batch.voided_at ? t("void since {date}", { date: day(batch.voided_at) })
      : expired ? t("expired") : batch.redeemed >= batch.count ? t("all redeemed") : t("active");
    tr.append(
      cell(`#${batch.id} · ${day(batch.created_at)}`),
      cell(money(batch.value_minor, batch.currency, exponentOf(batch.currency)), "num"),
      cell(String(batch.count), "num"),
      cell(String(batch.redeemed), "num redeemed"),
      cell(batch.expires_at ? localDay(batch.expires_at) : "—"),
      cell(account ? account.name : batch.account_id ? t("account {id}", { id: batch.account_id }) : t("any")),
      cell(batch.note || ""),
      cell(status, `batch-status ${batch.voided_at || expired ? "supply-off" : "supply-on"}`),
    );
    const td = document.createElement("td");
    if (!batch.voided_at) {
      const button = document.createElement("button");
      button.className = "secondary";
      button.textContent = t("Void");
      button.setAttribute("aria-label", t("Void batch {id}", { id: batch.id }));
      button.addEventListener("click", () => openVoid(batch));
      td.append(button);
    }
    tr.append(td);
    return tr;
  }));
  $("#voucher-batches-empty").hidden = voucherBatches.length > 0;
}

let voidingBatch = null;
function openVoid(batch) {
  voidingBatch = batch;
  $("#void-batch").textContent = t("Batch #{id}: {count} × {value}, {redeemed} redeemed. Its unused codes stop working; redeemed ones stay credited.", {
    id: batch.id, count: batch.count, value: money(batch.value_minor, batch.currency, exponentOf(batch.currency)), redeemed: batch.redeemed,
  });
  $("#void-reason").value = "";
  $("#void-error").textContent = "";
  $("#void-dialog").showModal();
  $("#void-reason").focus();
}

async function submitVoid(event) {
  event.preventDefault();
  const reason = $("#void-reason").value.trim();
  if (!reason) { $("#void-error").textContent = t("a reason is required"); $("#void-reason").focus(); return; }
  const button = $("#void-confirm");
  button.disabled = true;
  try {
    await api(`api/v1/vouchers/batches/${voidingBatch.id}/void`, { method: "POST", body: JSON.stringify({ reason }) });
    $("#void-dialog").close();
    await loadBatches();
  } catch (error) {
    $("#void-error").textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

// A cash sale at the counter: the landlord types the card's code for the open account.
async function redeemForAccount(event) {
  event.preventDefault();
  const account = state.open;
  const input = $("#account-voucher-code");
  const code = input.value.trim();
  $("#account-voucher-result").textContent = "";
  $("#account-voucher-error").textContent = "";
  input.removeAttribute("aria-invalid");
  if (!code) { $("#account-voucher-error").textContent = t("type the 20 digits of the voucher"); input.setAttribute("aria-invalid", "true"); input.focus(); return; }
  const button = $("#account-voucher-submit");
  button.disabled = true;
  try {
    const redeemed = await api("api/v1/vouchers/redeem", { method: "POST", body: JSON.stringify({ account: account.id, code }) });
    const order = redeemed.order;
    input.value = "";
    const values = { amount: money(order.amount_minor, order.currency, redeemed.currency_exponent), order: order.id, batch: redeemed.batch_id, card: redeemed.serial };
    $("#account-voucher-result").textContent = order.receipt
      ? t("Credited {amount}: order #{order} (batch {batch}, card {card}), receipt {receipt}.", { ...values, receipt: order.receipt.number })
      : t("Credited {amount}: order #{order} (batch {batch}, card {card}).", values);
    scheduleReload();
  } catch (error) {
    $("#account-voucher-error").textContent = error.message;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  } finally {
    button.disabled = false;
  }
}

let reloadTimer = null;
function scheduleReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => load().catch(showLiveError), 150);
}

function showLiveError(error) { $("#live").textContent = t("not live: {error}", { error: error.message }); }

function follow() {
  const source = new EventSource("api/v1/events");
  source.onopen = () => { $("#live").textContent = t("live"); scheduleReload(); };
  source.onerror = () => { $("#live").textContent = t("reconnecting…"); };
  for (const type of ["account.updated", "account.closed", "topup.updated", "alert"]) {
    source.addEventListener(type, scheduleReload);
  }
}

let topupAccount = null;
function openTopup(account) {
  topupAccount = account;
  $("#topup-account").textContent = `${account.name} · ${account.number || ""} · ` + t("balance {amount}", { amount: money(account.balance_minor, account.currency, account.currency_exponent) });
  $("#topup-amount").value = "";
  $("#topup-reference").value = "";
  $("#topup-error").textContent = "";
  $("#topup-amount").previousElementSibling.textContent = t("Amount ({currency})", { currency: account.currency });
  $("#topup-dialog").showModal();
}

async function submitTopup(event) {
  event.preventDefault();
  const account = topupAccount;
  try {
    const amount = toMinor($("#topup-amount").value, account.currency_exponent);
    const reference = $("#topup-reference").value.trim();
    const key = `ui-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    await api("api/v1/topups", {
      method: "POST",
      headers: { "Idempotency-Key": key },
      body: JSON.stringify({ account: account.id, amount_minor: amount, ...(reference ? { reference } : {}) }),
    });
    $("#topup-dialog").close();
    scheduleReload();
  } catch (error) {
    $("#topup-error").textContent = error.message;
  }
}

// Pay links are built from the add-on's public_base_url only (never from this page's address:
// the landlord sees the ledger through ingress, which no tenant can reach). Without it the page
// says so where links are made and shown, and asks the ledger for none.
const payLinksReady = () => Boolean(document.body.dataset.publicBaseUrl);

function showPayLinkDialog(issued, error) {
  $("#link-notice").hidden = payLinksReady();
  $("#link-error").textContent = error || "";
  $("#link-issued").hidden = !issued;
  $("#link-print").hidden = !issued;
  $("#link-url").href = issued ? issued.url : "#";
  $("#link-url").textContent = issued ? issued.url : "";
  $("#link-qr").innerHTML = issued ? issued.qr_svg : "";  // generated by the ledger, not user input
  $("#link-dialog").showModal();
}

async function openPayLink(account) {
  if (!payLinksReady()) { showPayLinkDialog(null, ""); return; }
  if (!confirm(t("Issue a new pay link for {name}? The previous link stops working.", { name: account.name }))) { return; }
  try {
    showPayLinkDialog(await api(`api/v1/accounts/${account.id}/pay-link`, { method: "POST", body: "{}" }), "");
  } catch (error) {
    showPayLinkDialog(null, error.message);
  }
}

async function createAccount(event) {
  event.preventDefault();
  const form = event.target;
  $("#new-error").textContent = "";
  try {
    const created = await api("api/v1/accounts", {
      method: "POST",
      body: JSON.stringify({
        name: form.name.value.trim(),
        currency: form.currency.value.trim().toUpperCase(),
        timezone: form.timezone.value.trim(),
        ...($("#new-site-box").hidden ? {} : { site_id: Number($("#new-site").value) }),
      }),
    });
    form.name.value = "";
    remember([created]);
    state.accounts = [created, ...state.accounts.filter((a) => a.id !== created.id)];  // shown first until the next refresh
    state.total += 1;
    render();
  } catch (error) {
    $("#new-error").textContent = error.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#search").addEventListener("input", searchTyped);
  $("#list-filter").addEventListener("change", (event) => { state.filter = event.target.value; loadAccounts().catch(showLiveError); });
  $("#list-site").addEventListener("change", () => loadAccounts().catch(showLiveError));
  $("#more").addEventListener("click", () => loadAccounts("more").catch(showLiveError));
  $("#voucher-account-search").addEventListener("input", () => fillVoucherAccounts().catch(showBatchesError));
  for (const button of document.querySelectorAll("button.sort")) {
    button.addEventListener("click", () => {
      state.descending = state.sortKey === button.dataset.key ? !state.descending : false;
      state.sortKey = button.dataset.key;
      loadAccounts().catch(showLiveError);
    });
  }
  $("#new-account").addEventListener("submit", createAccount);
  $("#topup-form").addEventListener("submit", submitTopup);
  $("#action-form").addEventListener("submit", submitAction);
  $("#credit-form").addEventListener("submit", submitCredit);
  $("#credit-account").addEventListener("input", creditTyping);
  $("#credit-account").addEventListener("keydown", creditKey);
  $("#credit-reason").addEventListener("input", () => creditFieldError("reason", ""));
  $("#batch-form").addEventListener("submit", batchTopup);
  $("#account-close").addEventListener("click", () => { state.open = null; $("#account-page").hidden = true; });
  $("#account-pay-link").addEventListener("click", () => { if (state.open) { openPayLink(state.open); } });
  $("#account-print").addEventListener("click", () => printStatement().catch((error) => { $("#account-statement").textContent = error.message; }));
  $("#tariff-form").addEventListener("submit", createTariff);
  $("#tariff-kind").addEventListener("change", (event) => {
    const tou = event.target.value === "tou";
    $("#tariff-segments-box").hidden = !tou;
    $("#tariff-price-box").hidden = tou;
  });
  $("#price-form").addEventListener("submit", changePrice);
  $("#voucher-form").addEventListener("submit", mintVouchers);
  $("#voucher-account").addEventListener("change", voucherAccountChosen);
  $("#voucher-currency").addEventListener("input", voucherCurrencyTyped);
  $("#void-form").addEventListener("submit", submitVoid);
  $("#account-voucher-form").addEventListener("submit", redeemForAccount);
  window.addEventListener("focus", () => loadBatches().catch(showBatchesError));
  $("#link-print").addEventListener("click", () => window.print());
  for (const button of document.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
  load().catch(showLiveError);
  follow();
});
