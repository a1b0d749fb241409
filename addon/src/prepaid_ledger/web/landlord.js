// The landlord UI: accounts listed live from the ledger's event stream. Paths are relative to
// <base>, so the page works under Home Assistant's ingress prefix and on its own.
"use strict";
const state = { accounts: [], lastTopup: {}, sortKey: "name", descending: false, search: "" };
const $ = (selector) => document.querySelector(selector);

async function api(path, options = {}) {
  const response = await fetch(path, {
    ...options,
    credentials: "same-origin",
    headers: { "X-Requested-With": "prepaid-ledger", "Content-Type": "application/json", ...(options.headers || {}) },
  });
  const isJson = (response.headers.get("content-type") || "").includes("json");
  const body = isJson ? await response.json() : await response.text();
  if (response.status === 401) { location.href = "login"; }
  if (!response.ok) { throw new Error((body && body.error && body.error.message) || `HTTP ${response.status}`); }
  return body;
}

// Exact money: minor units are integers; never through floating point.
function money(minor, currency, exponent) {
  const negative = minor < 0;
  let digits = String(Math.abs(minor)).padStart(exponent + 1, "0");
  if (exponent > 0) { digits = `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`; }
  return `${negative ? "-" : ""}${digits} ${currency}`;
}

function toMinor(text, exponent) {
  const clean = text.trim().replace(",", ".");
  const match = /^(\d{1,13})(?:\.(\d+))?$/.exec(clean);
  if (!match) { throw new Error("enter an amount such as 20 or 12.50"); }
  const fraction = match[2] || "";
  if (fraction.length > exponent) { throw new Error(`use at most ${exponent} decimal places`); }
  const minor = Number(match[1] + fraction.padEnd(exponent, "0"));
  if (minor <= 0) { throw new Error("the amount must be more than zero"); }
  return minor;
}

function supplyText(account) {
  return account.supply.allowed ? "On" : "Off";
}

function sortValue(account, key) {
  if (key === "supply") { return supplyText(account); }
  if (key === "last_topup") { return (state.lastTopup[account.id] || {}).created_at || ""; }
  const value = account[key];
  return typeof value === "string" ? value.toLowerCase() : value;
}

function render() {
  const body = $("#accounts tbody");
  const needle = state.search.toLowerCase();
  const shown = state.accounts
    .filter((a) => !needle || a.name.toLowerCase().includes(needle) || String(a.number || "").includes(needle))
    .sort((a, b) => {
      const x = sortValue(a, state.sortKey), y = sortValue(b, state.sortKey);
      const order = x < y ? -1 : x > y ? 1 : 0;
      return state.descending ? -order : order;
    });
  body.replaceChildren(...shown.map(row));
  $("#empty").hidden = state.accounts.length > 0;
  for (const button of document.querySelectorAll("button.sort")) {
    if (button.dataset.key === state.sortKey) {
      button.setAttribute("aria-sort", state.descending ? "descending" : "ascending");
    } else { button.removeAttribute("aria-sort"); }
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
  tr.append(cell(account.name), cell(account.number || ""));
  tr.append(cell(money(account.balance_minor, account.currency, account.currency_exponent),
    `num balance${account.balance_minor < 0 ? " negative" : ""}`));
  const supply = cell(supplyText(account), account.supply.allowed ? "supply-on" : "supply-off");
  const reason = document.createElement("span");
  reason.className = "reason";
  reason.textContent = (account.supply.reason || "").replaceAll("_", " ") +
    (account.supply.changes_at ? ` · changes ${new Date(account.supply.changes_at).toLocaleString()}` : "");
  supply.append(reason);
  tr.append(supply);
  const last = state.lastTopup[account.id];
  tr.append(cell(last ? `${money(last.amount_minor, last.currency, account.currency_exponent)} · ${new Date(last.created_at).toLocaleDateString()}` : "—"));
  const actions = document.createElement("td");
  const box = document.createElement("div");
  box.className = "actions";
  const topup = document.createElement("button");
  topup.textContent = "Top up";
  topup.setAttribute("aria-label", `Top up ${account.name}`);
  topup.addEventListener("click", () => openTopup(account));
  const link = document.createElement("button");
  link.textContent = "Pay link";
  link.className = "secondary";
  link.setAttribute("aria-label", `Pay link for ${account.name}`);
  link.addEventListener("click", () => openPayLink(account));
  box.append(topup, link);
  actions.append(box);
  tr.append(actions);
  if (account.status !== "open") { topup.disabled = link.disabled = true; }
  return tr;
}

async function load() {
  const [accounts, topups] = await Promise.all([
    api("api/v1/accounts"),
    api("api/v1/topups?status=succeeded&limit=1000"),
  ]);
  const last = {};
  for (const order of topups.topups) {  // newest first
    if (order.account_id !== null && !(order.account_id in last)) { last[order.account_id] = order; }
  }
  state.accounts = accounts.accounts;
  state.lastTopup = last;
  render();
  await Promise.all([loadOrders(), loadTariffs()]);
}

// ---- Orders board ----------------------------------------------------------------------------
const ACTIONS = [
  ["recheck", "Re-check with provider"],
  ["credit", "Credit manually"],
  ["refund", "Refund"],
  ["fail", "Mark failed"],
];

function age(iso) {
  const minutes = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 60000));
  return minutes < 90 ? `${minutes} min` : minutes < 2880 ? `${Math.round(minutes / 60)} h` : `${Math.round(minutes / 1440)} d`;
}

async function loadOrders() {
  const lists = await Promise.all(["needs_attention", "processing", "pending"].map(
    (status) => api(`api/v1/topups?status=${status}&limit=1000`)));
  const orders = lists.flatMap((list) => list.topups);
  const names = Object.fromEntries(state.accounts.map((a) => [a.id, a]));
  const rows = orders.map((order) => {
    const tr = document.createElement("tr");
    tr.dataset.order = order.id;
    const account = names[order.account_id];
    const exponent = account ? account.currency_exponent : 2;
    tr.append(cell(`#${order.id} · ${order.source}`), cell(account ? account.name : order.account_ref));
    tr.append(cell(money(order.amount_minor, order.currency, exponent), "num"));
    const status = cell(order.status.replaceAll("_", " "), `status status-${order.status}`);
    if (order.attention_reason) {
      const why = document.createElement("span");
      why.className = "reason";
      why.textContent = order.attention_reason;
      status.append(why);
    }
    tr.append(status, cell(age(order.created_at)));
    const td = document.createElement("td");
    const box = document.createElement("div");
    box.className = "actions";
    for (const [action, label] of ACTIONS) {
      if (action === "refund" && order.credited_minor - order.refunded_minor <= 0) { continue; }
      if (action === "recheck" && order.provider !== "stripe") { continue; }
      const button = document.createElement("button");
      button.textContent = label;
      button.className = action === "credit" ? "" : "secondary";
      button.setAttribute("aria-label", `${label}: order ${order.id}`);
      button.addEventListener("click", () => openAction(order, action, label));
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
  $("#action-order").textContent = `Order #${order.id}: ${order.status.replaceAll("_", " ")}${order.attention_reason ? ` (${order.attention_reason})` : ""}`;
  $("#action-reason").value = "";
  $("#action-error").textContent = "";
  $("#action-confirm").textContent = `Confirm: ${label.toLowerCase()}`;
  $("#action-dialog").showModal();
}

async function submitAction(event) {
  event.preventDefault();
  const reason = $("#action-reason").value.trim();
  if (!reason) { $("#action-error").textContent = "a reason is required"; return; }
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

// ---- Tariffs ---------------------------------------------------------------------------------
let tariffs = [];
async function loadTariffs() {
  tariffs = (await api("api/v1/tariffs")).tariffs;
  $("#tariffs tbody").replaceChildren(...tariffs.map((t) => {
    const tr = document.createElement("tr");
    const price = t.kind === "flat" ? `${t.price} ${t.currency}/${t.unit}` : "by band";
    tr.append(cell(t.name), cell(t.kind), cell(price, "num"),
      cell(t.versions.map((v) => `${new Date(v.effective_from).toLocaleDateString()}${v.price ? `: ${v.price}` : ""}`).join(" → ")));
    return tr;
  }));
  const select = $("#price-tariff");
  const chosen = select.value;
  select.replaceChildren(...tariffs.filter((t) => t.kind === "flat").map((t) => new Option(t.name, t.id)));
  if (chosen) { select.value = chosen; }
}

// The ledger names the field at fault first ("price must be ..."): show it next to that field.
function showFieldError(form, prefix, message) {
  for (const input of form.querySelectorAll("input[name]")) {
    if (message.startsWith(`${input.name} `)) {
      $(`#${prefix}-${input.name}-error`).textContent = message;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
  }
  $(`#${prefix}-error`).textContent = message;
}

async function createTariff(event) {
  event.preventDefault();
  const form = event.target;
  for (const el of form.querySelectorAll(".field-error")) { el.textContent = ""; }
  for (const el of form.querySelectorAll("[aria-invalid]")) { el.removeAttribute("aria-invalid"); }
  $("#tariff-error").textContent = "";
  const standing = form.standing_charge_minor_per_day.value.trim();
  try {
    await api("api/v1/tariffs", {
      method: "POST",
      body: JSON.stringify({
        name: form.name.value.trim(),
        currency: form.currency.value.trim().toUpperCase(),
        unit: form.unit.value,
        kind: "flat",
        price: form.price.value.trim().replace(",", "."),
        standing_charge_minor_per_day: /^\d+$/.test(standing) ? Number(standing) : standing,
      }),
    });
    form.name.value = "";
    form.price.value = "";
    await loadTariffs();
  } catch (error) {
    showFieldError(form, "tariff", error.message);
  }
}

async function changePrice(event) {
  event.preventDefault();
  $("#price-error").textContent = "";
  const tariff = tariffs.find((t) => String(t.id) === $("#price-tariff").value);
  const when = $("#price-from").value;
  if (!tariff) { $("#price-error").textContent = "create a flat tariff first"; return; }
  if (!when) { $("#price-error").textContent = "choose the date and time the new price applies from"; return; }
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

let reloadTimer = null;
function scheduleReload() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(() => load().catch(showLiveError), 150);
}

function showLiveError(error) { $("#live").textContent = `not live: ${error.message}`; }

function follow() {
  const source = new EventSource("api/v1/events");
  source.onopen = () => { $("#live").textContent = "live"; scheduleReload(); };
  source.onerror = () => { $("#live").textContent = "reconnecting…"; };
  for (const type of ["account.updated", "account.closed", "topup.updated", "alert"]) {
    source.addEventListener(type, scheduleReload);
  }
}

let topupAccount = null;
function openTopup(account) {
  topupAccount = account;
  $("#topup-account").textContent = `${account.name} · ${account.number || ""} · balance ${money(account.balance_minor, account.currency, account.currency_exponent)}`;
  $("#topup-amount").value = "";
  $("#topup-reference").value = "";
  $("#topup-error").textContent = "";
  $("#topup-amount").previousElementSibling.textContent = `Amount (${account.currency})`;
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

async function openPayLink(account) {
  if (!confirm(`Issue a new pay link for ${account.name}? The previous link stops working.`)) { return; }
  const issued = await api(`api/v1/accounts/${account.id}/pay-link`, { method: "POST", body: "{}" });
  $("#link-url").href = issued.url;
  $("#link-url").textContent = issued.url;
  $("#link-qr").innerHTML = issued.qr_svg;  // generated by the ledger, not user input
  $("#link-dialog").showModal();
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
      }),
    });
    form.name.value = "";
    state.accounts.push(created);
    render();
  } catch (error) {
    $("#new-error").textContent = error.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#search").addEventListener("input", (event) => { state.search = event.target.value; render(); });
  for (const button of document.querySelectorAll("button.sort")) {
    button.addEventListener("click", () => {
      state.descending = state.sortKey === button.dataset.key ? !state.descending : false;
      state.sortKey = button.dataset.key;
      render();
    });
  }
  $("#new-account").addEventListener("submit", createAccount);
  $("#topup-form").addEventListener("submit", submitTopup);
  $("#action-form").addEventListener("submit", submitAction);
  $("#tariff-form").addEventListener("submit", createTariff);
  $("#price-form").addEventListener("submit", changePrice);
  $("#link-print").addEventListener("click", () => window.print());
  for (const button of document.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
  load().catch(showLiveError);
  follow();
});
