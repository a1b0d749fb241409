// A room's meters on its page (last reading, held readings a person decides on) and the audit
// log (searched and paged by the ledger). Uses landlord.js's api, t, $, moment, cell and
// reasonSpan, and landlord_settings.js's askReason (every decision asks why; the ledger audits).
"use strict";

const HOLD_WORDS = {
  surge: t("more than the meter can use in that time"),
  reset: t("far below the last reading: a reset or a new meter?"),
  backwards: t("a little below the last reading"),
};
// What a person may decide about a held reading, by why it is held (the contract's RESOLUTIONS).
const DECISIONS = { surge: ["accept", "reject"], reset: ["rebase", "reject"], backwards: ["rebase", "reject"] };
const DECISION_WORDS = {
  accept: t("Accept (a real surge)"), reject: t("Reject (a misread)"), rebase: t("Count on from it (new register)"),
};

async function showRoomMeters(account) {
  $("#account-meters-error").textContent = "";
  const { meters } = await api(`api/v1/meters?account=${account.id}`);
  const held = await Promise.all(meters.map((m) => api(`api/v1/readings/held?meter=${m.id}`)));
  const blocks = meters.map((meter, i) => {
    const div = document.createElement("div");
    div.className = "meter";
    div.dataset.meter = meter.id;
    const last = meter.last_value === null || meter.last_value === undefined ? t("no reading yet")
      : t("last reading {value} {unit} at {when}", { value: meter.last_value, unit: meter.unit, when: moment(meter.last_at) });
    div.append(document.createTextNode(`${meter.name} · ${last}`));
    const waiting = held[i].readings;
    if (waiting.length) {
      const list = document.createElement("ul");
      for (const reading of waiting) {
        const li = document.createElement("li");
        li.className = "held";
        li.append(document.createTextNode(t("Held: {value} {unit} at {when}", { value: reading.value, unit: meter.unit, when: moment(reading.at) })),
          reasonSpan(HOLD_WORDS[reading.hold] || String(reading.hold || "")));
        for (const action of DECISIONS[reading.hold] || ["reject"]) {
          const button = document.createElement("button");
          button.type = "button";
          button.className = "secondary";
          button.textContent = DECISION_WORDS[action];
          button.addEventListener("click", () => askReason({
            title: DECISION_WORDS[action],
            what: t("Held reading {value} {unit} of {meter}", { value: reading.value, unit: meter.unit, meter: meter.name }),
            confirm: DECISION_WORDS[action],
            run: async (reason) => {
              await api(`api/v1/readings/${reading.id}/resolve`, { method: "POST", body: JSON.stringify({ action, reason }) });
              await showRoomMeters(account);
              scheduleReload();
            },
          }));
          li.append(" ", button);
        }
        list.append(li);
      }
      div.append(list);
    }
    return div;
  });
  $("#account-meters").replaceChildren(...(blocks.length ? blocks : [document.createTextNode(t("No meter yet: link one in Home Assistant."))]));
}

// ---- Audit log ---------------------------------------------------------------------------------
const audit = { next: null, rows: [], request: 0 };

async function loadAudit(more = false) {
  const mine = ++audit.request;
  const query = new URLSearchParams({ limit: "25" });
  const text = $("#audit-search").value.trim();
  if (text) { query.set("q", text); }
  if (more && audit.next) { query.set("cursor", audit.next); }
  const page = await api(`api/v1/audit?${query}`);
  if (mine !== audit.request) { return; }  // a newer search answered first
  audit.rows = more ? audit.rows.concat(page.entries) : page.entries;
  audit.next = page.next_cursor;
  $("#audit-log tbody").replaceChildren(...audit.rows.map((entry) => {
    const tr = document.createElement("tr");
    tr.append(cell(moment(entry.at)), cell(entry.actor), cell(entry.action), cell(entry.target));
    return tr;
  }));
  $("#audit-more").hidden = !audit.next;
  $("#audit-empty").hidden = audit.rows.length > 0;
}

document.addEventListener("DOMContentLoaded", () => {
  const failed = (error) => { $("#audit-error").textContent = error.message; };
  let timer = null;
  $("#audit-search").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(() => loadAudit().catch(failed), 200); });
  $("#audit-more").addEventListener("click", () => loadAudit(true).catch(failed));
  loadAudit().catch(failed);
});
