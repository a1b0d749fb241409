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
  $("#link-print").addEventListener("click", () => window.print());
  for (const button of document.querySelectorAll("[data-close]")) {
    button.addEventListener("click", () => button.closest("dialog").close());
  }
  load().catch(showLiveError);
  follow();
});
