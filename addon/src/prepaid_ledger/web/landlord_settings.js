// The landlord page's settings: which payment methods Checkout offers, top-up promotions, and
// the endpoints that receive accounting events with their delivery log. A second classic script
// after landlord.js: it uses that script's api(), t(), money() and page helpers.
"use strict";

// ---- Words -----------------------------------------------------------------------------------
const METHOD_WORDS = {
  card: t("Card"), alipay: t("Alipay"), wechat_pay: t("WeChat Pay"), sepa_debit: t("SEPA Direct Debit"),
  ideal: t("iDEAL"), bancontact: t("Bancontact"), link: t("Link"),
};
const EVENT_WORDS = {
  "topup.succeeded": t("top-up credited"), "topup.refunded": t("top-up refunded"),
  "charge.posted": t("a day's charges"), "adjustment.created": t("balance correction"),
  "order.needs_attention": t("order needs attention"),
};
const DELIVERY_WORDS = { pending: t("waiting"), delivered: t("delivered"), failed: t("failed") };
const percentText = (value) => new Intl.NumberFormat(ENGLISH ? "en" : LANG, { maximumFractionDigits: 2 }).format(Number(value));

// A datetime-local value is the landlord's own clock; the ledger wants an instant.
const instant = (local) => (local ? new Date(local).toISOString() : null);

// Errors next to the field the ledger names (its wire name, mapped to the form's input).
function settingsFieldError(form, prefix, error, names = {}) {
  const field = names[error.field] || error.field;
  const input = field && form.querySelector(`[name="${CSS.escape(field)}"]`);
  const place = input && $(`#${prefix}-${field}-error`);
  if (place) {
    place.textContent = error.message;
    input.setAttribute("aria-invalid", "true");
    input.focus();
  } else {
    $(`#${prefix}-error`).textContent = error.message;
  }
}

function actionButton(label, onClick, className = "secondary") {
  const button = document.createElement("button");
  button.type = "button";
  button.className = className;
  button.textContent = label;
  button.addEventListener("click", onClick);
  return button;
}

function actionsCell(...buttons) {
  const td = document.createElement("td");
  const box = document.createElement("div");
  box.className = "actions";
  box.append(...buttons);
  td.append(box);
  return td;
}

// ---- A reason, asked for before an audited change ----------------------------------------------
let reasonTask = null;
function askReason({ title, what, confirm, run }) {
  reasonTask = run;
  $("#reason-title").textContent = title;
  $("#reason-what").textContent = what;
  $("#reason-confirm").textContent = confirm;
  $("#reason-text").value = "";
  $("#reason-error").textContent = "";
  $("#reason-dialog").showModal();
}

async function submitReason(event) {
  event.preventDefault();
  const reason = $("#reason-text").value.trim();
  if (!reason) { $("#reason-error").textContent = t("give a reason: it is kept in the audit log"); return; }
  const button = $("#reason-confirm");
  button.disabled = true;
  try {
    await reasonTask(reason);
    $("#reason-dialog").close();
  } catch (error) {
    $("#reason-error").textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

// ---- Payment methods ---------------------------------------------------------------------------
async function loadPaymentMethods() {
  const settings = await api("api/v1/settings/payment-methods");
  const box = $("#methods-choices");
  const legend = box.querySelector("legend");
  const choices = settings.available.map((info) => {
    const id = `method-${info.method}`;
    const wrap = document.createElement("div");
    wrap.className = "check";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.id = id;
    input.value = info.method;
    input.checked = settings.methods.includes(info.method);
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = METHOD_WORDS[info.method] || info.method;
    const notes = [];
    if (info.currencies && !info.currencies.includes(settings.default_currency)) {
      input.disabled = !input.checked;
      notes.push(t("not in {currency}; takes {currencies}", { currency: settings.default_currency, currencies: info.currencies.join(", ") }));
    } else if (info.currencies) {
      notes.push(t("takes {currencies}", { currencies: info.currencies.join(", ") }));
    }
    if (info.confirms_later) { notes.push(t("confirms days later")); }
    wrap.append(input, label);
    if (notes.length) { wrap.append(reasonSpan(notes.join(" · "))); }
    return wrap;
  });
  box.replaceChildren(legend, ...choices);
  const option = settings.option_methods.map((m) => METHOD_WORDS[m] || m).join(", ");
  $("#methods-source").textContent = settings.source === "landlord"
    ? t("Chosen on this page (the add-on option says: {methods}).", { methods: option })
    : t("From the add-on option payment_methods ({methods}) until you save a choice here.", { methods: option });
}

async function savePaymentMethods(event) {
  event.preventDefault();
  $("#methods-error").textContent = "";
  $("#methods-saved").textContent = "";
  const methods = [...document.querySelectorAll("#methods-choices input:checked")].map((input) => input.value);
  if (!methods.length) { $("#methods-error").textContent = t("choose at least one payment method"); return; }
  try {
    await api("api/v1/settings/payment-methods", { method: "PUT", body: JSON.stringify({ methods }) });
    await loadPaymentMethods();
    $("#methods-saved").textContent = t("Saved: the pay page offers {methods}.", { methods: methods.map((m) => METHOD_WORDS[m] || m).join(", ") });
  } catch (error) {
    $("#methods-error").textContent = error.message;
  }
}

// ---- Promotions --------------------------------------------------------------------------------
const PROMOTION_FIELDS = { min_topup_minor: "min_topup", bonus_minor: "bonus", max_bonus_minor: "max_bonus" };

function promotionBonus(promotion) {
  const exponent = exponentOf(promotion.currency);
  const minimum = money(promotion.min_topup_minor, promotion.currency, exponent);
  if (promotion.bonus_minor !== null && promotion.bonus_minor !== undefined) {
    return t("{bonus} extra on a top-up of at least {minimum}", { bonus: money(promotion.bonus_minor, promotion.currency, exponent), minimum });
  }
  const text = t("{percent} % extra on a top-up of at least {minimum}", { percent: percentText(promotion.bonus_percent), minimum });
  if (!promotion.max_bonus_minor) { return text; }
  const cap = t("at most {cap}", { cap: money(promotion.max_bonus_minor, promotion.currency, exponent) });
  return `${text}, ${cap}`;
}

function promotionWindow(promotion) {
  const start = promotion.starts_at && moment(promotion.starts_at);
  const end = promotion.ends_at && moment(promotion.ends_at);
  if (start && end) { return t("from {start} until {end}", { start, end }); }
  if (start) { return t("from {start}", { start }); }
  if (end) { return t("until {end}", { end }); }
  return t("no end date");
}

function promotionLimits(promotion, tariffNames) {
  const limits = [];
  if (promotion.first_topup_only) { limits.push(t("first top-up only")); }
  if (promotion.uses_per_account) { limits.push(t("{count} per account", { count: promotion.uses_per_account })); }
  if (promotion.uses_total) { limits.push(t("{count} in all", { count: promotion.uses_total })); }
  if (promotion.tariff_id) { limits.push(t("tariff {name}", { name: tariffNames[promotion.tariff_id] || `#${promotion.tariff_id}` })); }
  return limits.length ? limits.join(" · ") : t("none");
}

// Where a promotion stands now (the ledger judges each top-up by when its order was made).
function promotionStatus(promotion) {
  const now = Date.now();
  if (promotion.ended_at) { return { code: "ended", text: t("ended {when}", { when: moment(promotion.ended_at) }) }; }
  if (promotion.ends_at && new Date(promotion.ends_at).getTime() <= now) { return { code: "over", text: t("over") }; }
  if (promotion.uses_total && promotion.uses >= promotion.uses_total) { return { code: "used_up", text: t("used up") }; }
  if (promotion.starts_at && new Date(promotion.starts_at).getTime() > now) { return { code: "scheduled", text: t("scheduled") }; }
  return { code: "running", text: t("running") };
}

async function loadPromotions() {
  const [{ promotions }, { tariffs: tariffList }] = await Promise.all([api("api/v1/promotions"), api("api/v1/tariffs")]);
  const tariffNames = Object.fromEntries(tariffList.map((one) => [one.id, one.name]));
  const select = $("#promotion-tariff");
  const chosen = select.value;
  select.replaceChildren(new Option(t("Any tariff"), ""), ...tariffList.map((one) => new Option(one.name, one.id)));
  select.value = chosen;
  $("#promotion-list tbody").replaceChildren(...promotions.map((promotion) => {
    const tr = document.createElement("tr");
    tr.dataset.id = promotion.id;
    const status = promotionStatus(promotion);
    const given = `${promotion.uses} · ${money(promotion.granted_minor, promotion.currency, exponentOf(promotion.currency))}`;
    tr.append(cell(promotion.name), cell(promotionBonus(promotion)), cell(promotionWindow(promotion)),
      cell(promotionLimits(promotion, tariffNames)), cell(given, "num"), cell(status.text, `status-${status.code}`));
    const ending = status.code === "ended" || status.code === "over" ? [] : [actionButton(t("End"), () => askReason({
      title: t("End a promotion"),
      what: promotion.name,
      confirm: t("End the promotion"),
      run: async (reason) => {
        await api(`api/v1/promotions/${promotion.id}/end`, { method: "POST", body: JSON.stringify({ reason }) });
        await loadPromotions();
      },
    }))];
    tr.append(actionsCell(...ending));
    return tr;
  }));
  $("#promotions-empty").hidden = promotions.length > 0;
}

function promotionKindChosen() {
  const percent = $("#promotion-kind").value === "percent";
  $("#promotion-amount-box").hidden = percent;
  $("#promotion-percent-box").hidden = !percent;
  $("#promotion-cap-box").hidden = !percent;
}

// A whole number as a number; anything else as typed, for the ledger to refuse by name.
const wholeOrText = (text) => (/^\d{1,9}$/.test(text) ? Number(text) : text);

async function createPromotion(event) {
  event.preventDefault();
  const form = event.target;
  clearErrors(form, "promotion");
  const currency = form.currency.value.trim().toUpperCase();
  const exponent = exponentOf(currency);
  const percent = form.kind.value === "percent";
  const body = { name: form.name.value.trim(), currency, first_topup_only: form.first_topup_only.checked };
  try {
    for (const [name, wire, optional] of [["min_topup", "min_topup_minor", false], ...(percent ? [["max_bonus", "max_bonus_minor", true]] : [["bonus", "bonus_minor", false]])]) {
      const text = form[name].value.trim();
      if (optional && !text) { continue; }
      try { body[wire] = toMinor(text, exponent); } catch (error) { error.field = wire; throw error; }
    }
  } catch (error) {
    settingsFieldError(form, "promotion", error, PROMOTION_FIELDS);
    return;
  }
  if (percent) { body.bonus_percent = form.bonus_percent.value.trim().replace(",", "."); }
  for (const name of ["starts_at", "ends_at"]) {
    if (form[name].value) { body[name] = instant(form[name].value); }
  }
  for (const name of ["uses_per_account", "uses_total"]) {
    const text = form[name].value.trim();
    if (text) { body[name] = wholeOrText(text); }
  }
  if (form.tariff_id.value) { body.tariff_id = Number(form.tariff_id.value); }
  try {
    await api("api/v1/promotions", { method: "POST", body: JSON.stringify(body) });
    for (const name of ["name", "min_topup", "bonus", "bonus_percent", "max_bonus", "starts_at", "ends_at", "uses_per_account", "uses_total"]) {
      form[name].value = "";
    }
    form.first_topup_only.checked = false;
    await loadPromotions();
  } catch (error) {
    settingsFieldError(form, "promotion", error, PROMOTION_FIELDS);
  }
}

// ---- Accounting endpoints and their delivery log -------------------------------------------------
let endpoints = [];

function eventTypeChoices() {
  const box = $("#endpoint-types");
  const legend = box.querySelector("legend");
  box.replaceChildren(legend, ...Object.entries(EVENT_WORDS).map(([type, words]) => {
    const wrap = document.createElement("div");
    wrap.className = "check";
    const input = document.createElement("input");
    input.type = "checkbox";
    input.id = `endpoint-type-${type.replace(".", "-")}`;
    input.value = type;
    input.checked = true;
    const label = document.createElement("label");
    label.htmlFor = input.id;
    label.textContent = words;
    wrap.append(input, label);
    return wrap;
  }));
}

async function loadEndpoints() {
  endpoints = (await api("api/v1/accounting/endpoints")).endpoints;
  $("#endpoint-list tbody").replaceChildren(...endpoints.map((endpoint) => {
    const tr = document.createElement("tr");
    tr.dataset.id = endpoint.id;
    const where = cell(endpoint.url, "url");
    if (endpoint.description) { where.append(reasonSpan(endpoint.description)); }
    const status = endpoint.enabled ? cell(t("sending"), "status-sending")
      : cell(t("disabled {when}", { when: moment(endpoint.disabled_at) }), "status-disabled");
    if (!endpoint.enabled && endpoint.disabled_reason) { status.append(reasonSpan(endpoint.disabled_reason)); }
    tr.append(where, cell(endpoint.event_types.map((type) => EVENT_WORDS[type] || type).join(", ")),
      cell(`${endpoint.secret_prefix}…`, "secret"), status);
    tr.append(actionsCell(...(endpoint.enabled ? [actionButton(t("Disable"), () => askReason({
      title: t("Disable an endpoint"),
      what: endpoint.url,
      confirm: t("Disable the endpoint"),
      run: async (reason) => {
        await api(`api/v1/accounting/endpoints/${endpoint.id}/disable`, { method: "POST", body: JSON.stringify({ reason }) });
        await loadAccounting();
      },
    }))] : [])));
    return tr;
  }));
  $("#endpoints-empty").hidden = endpoints.length > 0;
  const select = $("#delivery-endpoint");
  const chosen = select.value;
  select.replaceChildren(new Option(t("Every endpoint"), ""), ...endpoints.map((endpoint) => new Option(endpoint.url, endpoint.id)));
  select.value = chosen;
}

function lastAnswer(delivery) {
  if (delivery.last_http_status) { return `HTTP ${delivery.last_http_status}`; }
  if (delivery.last_error) { return delivery.last_error; }
  return delivery.attempts ? "" : t("not tried yet");
}

async function loadDeliveries() {
  $("#deliveries-error").textContent = "";
  const query = new URLSearchParams({ limit: "200" });
  if ($("#delivery-endpoint").value) { query.set("endpoint", $("#delivery-endpoint").value); }
  if ($("#delivery-status").value) { query.set("status", $("#delivery-status").value); }
  const { deliveries } = await api(`api/v1/accounting/deliveries?${query}`);
  await accountsById(deliveries.map((d) => d.account_id));
  const enabled = new Set(endpoints.filter((e) => e.enabled).map((e) => e.id));
  $("#delivery-list tbody").replaceChildren(...deliveries.map((delivery) => {
    const tr = document.createElement("tr");
    tr.dataset.id = delivery.id;
    const what = cell(EVENT_WORDS[delivery.type] || delivery.type);
    what.append(reasonSpan(delivery.message_id, "reason typed"));
    const account = state.known.get(delivery.account_id);
    const status = cell(DELIVERY_WORDS[delivery.status] || delivery.status, `status-${delivery.status}`);
    if (delivery.status === "delivered" && delivery.delivered_at) {
      status.append(reasonSpan(moment(delivery.delivered_at)));
    } else if (delivery.status === "pending" && deliveries.some((other) => other.status === "failed"
      && other.endpoint_id === delivery.endpoint_id && other.account_id === delivery.account_id && other.id < delivery.id)) {
      // In order per account: it goes once the failed one before it is replayed and delivered.
      status.append(reasonSpan(t("waits for the failed event before it")));
    } else if (delivery.status === "pending" && delivery.next_attempt_at) {
      status.append(reasonSpan(t("next try {when}", { when: moment(delivery.next_attempt_at) })));
    }
    tr.append(what, cell(account ? account.name : delivery.account_id ? `#${delivery.account_id}` : "—"), status,
      cell(String(delivery.attempts), "num"), cell(lastAnswer(delivery)), cell(moment(delivery.created_at)));
    const replay = enabled.has(delivery.endpoint_id) ? [actionButton(delivery.status === "pending" ? t("Send now") : t("Replay"), async (event) => {
      event.target.disabled = true;
      try {
        await api(`api/v1/accounting/deliveries/${delivery.id}/replay`, { method: "POST", body: "{}" });
        await loadDeliveries();
      } catch (error) {
        $("#deliveries-error").textContent = error.message;
        event.target.disabled = false;
      }
    })] : [];
    tr.append(actionsCell(...replay));
    return tr;
  }));
  $("#deliveries-empty").hidden = deliveries.length > 0;
}

async function loadAccounting() {
  await loadEndpoints();
  await loadDeliveries();
}

async function createEndpoint(event) {
  event.preventDefault();
  const form = event.target;
  clearErrors(form, "endpoint");
  $("#endpoint-secret").hidden = true;
  const eventTypes = [...document.querySelectorAll("#endpoint-types input:checked")].map((input) => input.value);
  if (!eventTypes.length) { $("#endpoint-error").textContent = t("choose at least one event to send"); return; }
  const description = form.description.value.trim();
  try {
    const created = await api("api/v1/accounting/endpoints", {
      method: "POST",
      body: JSON.stringify({ url: form.url.value.trim(), event_types: eventTypes, ...(description ? { description } : {}) }),
    });
    form.url.value = "";
    form.description.value = "";
    $("#endpoint-secret-value").textContent = created.secret;
    $("#endpoint-secret").hidden = false;
    await loadAccounting();
  } catch (error) {
    settingsFieldError(form, "endpoint", error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("#reason-form").addEventListener("submit", submitReason);
  $("#methods-form").addEventListener("submit", savePaymentMethods);
  $("#promotion-form").addEventListener("submit", createPromotion);
  $("#promotion-kind").addEventListener("change", promotionKindChosen);
  $("#endpoint-form").addEventListener("submit", createEndpoint);
  $("#delivery-filter").addEventListener("change", () => loadDeliveries().catch((error) => { $("#deliveries-error").textContent = error.message; }));
  $("#delivery-refresh").addEventListener("click", () => loadAccounting().catch((error) => { $("#deliveries-error").textContent = error.message; }));
  // Bonuses given and deliveries change with every payment: fresh figures when the landlord is back.
  window.addEventListener("focus", () => {
    loadPromotions().catch((error) => { $("#promotions-load-error").textContent = error.message; });
    loadAccounting().catch((error) => { $("#deliveries-error").textContent = error.message; });
  });
  eventTypeChoices();
  loadPaymentMethods().catch((error) => { $("#methods-error").textContent = error.message; });
  loadPromotions().catch((error) => { $("#promotions-load-error").textContent = error.message; });
  loadAccounting().catch((error) => { $("#deliveries-error").textContent = error.message; });
});
