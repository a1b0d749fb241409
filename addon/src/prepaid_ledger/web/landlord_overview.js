// The landlord's month at a glance (GET api/v1/overview): money in, what the rooms were
// charged, their use, rooms cut off or low, orders that need a person; charts of the last 30
// days with the same numbers as tables. Uses landlord.js's api, t, money, $ and LANG, and
// charts.js (uPlot, served by the ledger). Follows the site chosen above the room list.
"use strict";

const OVERVIEW_COLOURS = { topups: "#2e7d32", charged: "#0277bd", use: "#e65100" };

function tile(label, value, note = "") {
  const div = document.createElement("div");
  div.className = "tile";
  const name = document.createElement("span");
  name.className = "muted";
  name.textContent = label;
  const figure = document.createElement("strong");
  figure.textContent = value;
  div.append(name, figure);
  if (note) { div.append(reasonSpan(note)); }
  return div;
}

function overviewTable(caption, days, columns) {
  const table = document.createElement("table");
  const title = document.createElement("caption");
  title.textContent = caption;
  const head = document.createElement("tr");
  for (const text of [t("Day"), ...columns.map((c) => c.label)]) {
    const th = document.createElement("th");
    th.scope = "col";
    th.textContent = text;
    head.append(th);
  }
  const thead = document.createElement("thead");
  thead.append(head);
  const body = document.createElement("tbody");
  for (const [i, day] of days.entries()) {
    if (columns.every((c) => !c.values[i])) { continue; }  // only the days something happened
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.scope = "row";
    th.textContent = LedgerCharts.dayText(day, LANG);
    tr.append(th, ...columns.map((c) => cell(c.text(c.values[i] || 0), "num")));
    body.append(tr);
  }
  table.append(title, thead, body);
  return table;
}

// The first-run guide: shown until there is a tariff, a room and a linked meter.
async function showFirstRun(rooms) {
  const { tariffs: made } = await api("api/v1/tariffs");
  const done = { tariff: made.length > 0, room: rooms.open + rooms.closed > 0, meter: rooms.meters > 0, link: false };
  for (const step of document.querySelectorAll("#first-run-steps li")) {
    step.classList.toggle("done", done[step.dataset.step]);
  }
  $("#first-run").hidden = done.tariff && done.room && done.meter;
}

async function loadOverview() {
  const site = $("#list-site") ? $("#list-site").value : "";
  const view = await api(`api/v1/overview${site ? `?site=${site}` : ""}`);
  if (!site) { await showFirstRun(view.rooms); }
  const tiles = [];
  for (const m of view.money) {
    const say = (minor) => money(minor, m.currency, m.currency_exponent);
    tiles.push(tile(t("Money in this month"), say(m.topups_this_month_minor),
      m.refunds_this_month_minor ? t("{amount} refunded", { amount: say(m.refunds_this_month_minor) }) : ""));
    tiles.push(tile(t("Charged for use this month"), say(m.charged_this_month_minor)));
  }
  for (const u of view.use) {
    tiles.push(tile(t("Used this month"), `${oneDecimal(u.this_month)} ${u.unit}`));
  }
  tiles.push(tile(t("Rooms cut off"), t("{count} of {total}", { count: view.rooms.supply_off, total: view.rooms.open })));
  tiles.push(tile(t("Rooms low on credit"), String(view.rooms.low)));
  const waiting = view.orders.needs_attention;
  const orders = tile(t("Orders that need you"), String(waiting),
    view.orders.processing ? t("{count} still processing", { count: view.orders.processing }) : "");
  if (waiting) { orders.classList.add("attention"); }
  tiles.push(orders);
  $("#overview-tiles").replaceChildren(...tiles);

  const days = LedgerCharts.daysUpTo(view.last_day, 30);
  const at = new Map(days.map((day, i) => [day, i]));
  const charts = [], tables = [];
  for (const m of view.money) {
    const say = (minor) => money(minor, m.currency, m.currency_exponent);
    const topups = days.map(() => null), charged = days.map(() => null);
    for (const d of m.days) {
      if (at.has(d.day)) { topups[at.get(d.day)] = d.topups_minor || null; charged[at.get(d.day)] = d.charged_minor || null; }
    }
    const lines = view.use.map((u) => ({
      label: t("used ({unit})", { unit: u.unit }), colour: OVERVIEW_COLOURS.use, unit: u.unit,
      values: days.map((day) => (day in u.days ? Number(u.days[day]) : null)),
    }));
    for (const [label, values, colour, withUse] of [
      [t("Money in per day ({currency})", { currency: m.currency }), topups, OVERVIEW_COLOURS.topups, false],
      [t("Charged per day ({currency}) and use", { currency: m.currency }), charged, OVERVIEW_COLOURS.charged, true],
    ]) {
      const figure = document.createElement("figure");
      const caption = document.createElement("figcaption");
      caption.textContent = label;
      const canvas = document.createElement("div");
      canvas.className = "chart";
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", label);
      figure.append(caption, canvas);
      charts.push([canvas, { days, bars: [{ label, colour, values }], lines: withUse ? lines : [], money: say, locale: LANG, height: 180 }]);
      const details = document.createElement("details");
      const summary = document.createElement("summary");
      summary.textContent = t("The numbers");
      const columns = [{ label, values, text: say }];
      if (withUse) {
        for (const line of lines) { columns.push({ label: line.label, values: line.values, text: (q) => oneDecimal(q) }); }
      }
      details.append(summary, overviewTable(label, days, columns));
      figure.append(details);
      tables.push(figure);
    }
  }
  $("#overview-charts").replaceChildren(...tables);
  for (const [element, options] of charts) { LedgerCharts.draw(element, options); }
  $("#overview-empty").hidden = view.money.length > 0;
}

document.addEventListener("DOMContentLoaded", () => {
  const show = () => loadOverview().catch((error) => { $("#overview-error").textContent = error.message; });
  if ($("#list-site")) { $("#list-site").addEventListener("change", show); }
  window.addEventListener("focus", show);
  show();
});
