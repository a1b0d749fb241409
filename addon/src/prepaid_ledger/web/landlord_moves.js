// Tenant changes from a room's page, each a guided dialog of the ledger's own steps (each
// audited by the ledger): move-out (the final reading, then the balance paid back, moved to
// the tenant's new room or kept owed, then the account closed) and move-in (a new tenant's
// account on the same meter from a time and a start reading). Uses landlord.js's api, t,
// money, moment, $, state, remember, normalizeNumber and scheduleReload.
"use strict";

const moves = { account: null, meters: [], created: null };

// A time as a datetime-local field shows it: the browser's own zone, to the minute.
function localInput(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

// A meter reading as the ledger takes it ("1234.5"), or null for anything else.
function readingText(text) {
  const clean = text.trim().replace(",", ".");
  return /^\d{1,12}(\.\d{1,9})?$/.test(clean) ? clean : null;
}

function moveError(id, message) {
  const field = $(`#${id}`);
  $(`#${id}-error`).textContent = message;
  if (message) { field.setAttribute("aria-invalid", "true"); } else { field.removeAttribute("aria-invalid"); }
  return message ? field : null;
}

async function metersOf(account, select) {
  const { meters } = await api(`api/v1/meters?account=${account.id}`);
  select.replaceChildren(...meters.map((m) => new Option(
    `${m.name} · ${m.last_value === null || m.last_value === undefined ? "—" : m.last_value} ${m.unit}`, m.id)));
  return meters;
}

async function openMoveOut() {
  const account = state.open;
  if (!account) { return; }
  moves.account = account;
  for (const id of ["moveout-value", "moveout-reference", "moveout-target", "moveout-reason"]) { moveError(id, ""); }
  $("#moveout-error").textContent = $("#moveout-result").textContent = "";
  $("#moveout-value").value = $("#moveout-reference").value = $("#moveout-target").value = $("#moveout-reason").value = "";
  $("#moveout-at").value = localInput(new Date());
  $("#moveout-account").textContent = `${account.name} · ${account.number || account.id}`;
  $("#moveout-balance").textContent = t("Balance now: {amount}", { amount: money(account.balance_minor, account.currency, account.currency_exponent) });
  $("#moveout-confirm").disabled = false;
  moves.meters = await metersOf(account, $("#moveout-meter"));
  $("#moveout-meter").disabled = $("#moveout-value").disabled = !moves.meters.length;
  settleChosen();
  $("#moveout-dialog").showModal();
}

function settleChosen() {
  const how = document.querySelector('input[name="settle"]:checked').value;
  $("#moveout-refund-box").hidden = how !== "refund";
  $("#moveout-transfer-box").hidden = how !== "transfer";
}

async function submitMoveOut(event) {
  event.preventDefault();
  const account = moves.account;
  const how = document.querySelector('input[name="settle"]:checked').value;
  const typed = $("#moveout-value").value.trim();
  const reference = $("#moveout-reference").value.trim();
  const target = $("#moveout-target").value.trim();
  const reason = $("#moveout-reason").value.trim();
  $("#moveout-error").textContent = "";
  // Every field is checked before anything is sent: a half-done move-out helps no one.
  const wrong = [
    moveError("moveout-value", typed && !readingText(typed) ? t("enter the meter's reading, such as 1234.5") : ""),
    moveError("moveout-reference", how === "refund" && !reference ? t("say how the money went back, e.g. a receipt number") : ""),
    moveError("moveout-target", how === "transfer" && !target ? t("type the account number of the tenant's new room") : ""),
    moveError("moveout-reason", reason ? "" : t("a reason is required")),
  ].find(Boolean);
  if (wrong) { wrong.focus(); return; }
  $("#moveout-confirm").disabled = true;
  try {
    if (typed) {  // 1. the final reading, billed to this room before it closes
      const at = new Date($("#moveout-at").value || Date.now());
      const result = await api("api/v1/readings", {
        method: "POST",
        body: JSON.stringify({ readings: [{ meter_id: Number($("#moveout-meter").value), value: readingText(typed), at: at.toISOString() }] }),
      });
      if (result.meters.some((m) => m.held)) {
        moveError("moveout-value", t("the ledger held this reading as implausible: check it, or resolve it in Home Assistant"));
        $("#moveout-confirm").disabled = false;
        return;
      }
    }
    const now = await api(`api/v1/accounts/${account.id}`);  // the balance after the final reading
    const body = { reason };
    if (how === "refund" && now.balance_minor > 0) { body.refund = { method: $("#moveout-method").value, reference }; }
    if (how === "transfer") { body.transfer_to = normalizeNumber(target); }
    const closed = await api(`api/v1/accounts/${account.id}/close`, { method: "POST", body: JSON.stringify(body) });
    const settled = closed.settlement;
    const say = (minor) => money(minor, account.currency, account.currency_exponent);
    const outcome = settled.transfer_to ? t("{amount} moved to account {id}", { amount: say(settled.transferred_minor), id: settled.transfer_to })
      : settled.refund_method ? t("{amount} paid back ({reference})", { amount: say(settled.refund_due_minor), reference: settled.refund_reference })
        : settled.refund_due_minor ? t("{amount} still to pay back", { amount: say(settled.refund_due_minor) })
          : settled.shortfall_minor ? t("{amount} written off", { amount: say(settled.shortfall_minor) }) : t("nothing left to settle");
    $("#moveout-result").textContent = t("Closed: {outcome}.", { outcome });
    scheduleReload();
  } catch (error) {
    const field = { transfer_to: "moveout-target", reason: "moveout-reason", value: "moveout-value" }[String(error.field).split(".").pop()];
    if (field) { moveError(field, error.message); } else { $("#moveout-error").textContent = error.message; }
    $("#moveout-confirm").disabled = false;
  }
}

async function openMoveIn() {
  const account = state.open;
  if (!account) { return; }
  moves.account = account;
  moves.created = null;
  for (const id of ["movein-name", "movein-value"]) { moveError(id, ""); }
  $("#movein-error").textContent = $("#movein-result").textContent = "";
  $("#movein-name").value = $("#movein-value").value = "";
  $("#movein-at").value = localInput(new Date());
  $("#movein-account").textContent = t("The meter of {name} goes to a new account in {currency}.", { name: account.name, currency: account.currency });
  $("#movein-confirm").disabled = false;
  moves.meters = await metersOf(account, $("#movein-meter"));
  if (!moves.meters.length) { $("#movein-error").textContent = t("this room has no meter to hand over"); $("#movein-confirm").disabled = true; }
  $("#movein-dialog").showModal();
}

async function submitMoveIn(event) {
  event.preventDefault();
  const account = moves.account;
  const name = $("#movein-name").value.trim();
  const typed = $("#movein-value").value.trim();
  $("#movein-error").textContent = "";
  const wrong = [
    moveError("movein-name", name ? "" : t("name the room and its new tenant")),
    moveError("movein-value", readingText(typed) ? "" : t("enter the meter's reading, such as 1234.5")),
  ].find(Boolean);
  if (wrong) { wrong.focus(); return; }
  $("#movein-confirm").disabled = true;
  const at = new Date($("#movein-at").value || Date.now());
  try {
    if (!moves.created) {  // kept if the hand-over below is refused: a retry reuses it
      moves.created = await api("api/v1/accounts", {
        method: "POST",
        body: JSON.stringify({ name, currency: account.currency, timezone: account.timezone, site_id: account.site_id }),
      });
      remember([moves.created]);
    }
    const meterId = Number($("#movein-meter").value);
    await api(`api/v1/meters/${meterId}/assign`, {
      method: "POST",
      body: JSON.stringify({ account_id: moves.created.id, from: at.toISOString(), start_value: readingText(typed) }),
    });
    $("#movein-result").textContent = t("{name} pays for this meter from {when}, from reading {value} (account {number}).",
      { name, when: moment(at.toISOString()), value: readingText(typed), number: moves.created.number || moves.created.id });
    scheduleReload();
  } catch (error) {
    if (String(error.field).endsWith("start_value")) { moveError("movein-value", error.message); } else { $("#movein-error").textContent = error.message; }
    $("#movein-confirm").disabled = false;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#account-moveout").addEventListener("click", () => openMoveOut().catch((error) => { $("#moveout-error").textContent = error.message; }));
  $("#account-movein").addEventListener("click", () => openMoveIn().catch((error) => { $("#movein-error").textContent = error.message; }));
  for (const radio of document.querySelectorAll('input[name="settle"]')) { radio.addEventListener("change", settleChosen); }
  $("#moveout-form").addEventListener("submit", submitMoveOut);
  $("#movein-form").addEventListener("submit", submitMoveIn);
});
