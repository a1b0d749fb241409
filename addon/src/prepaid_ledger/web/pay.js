// The tenant's pay page: draws the use chart from the table below it (its data- attributes carry
// the exact numbers, so the chart shows what the table says), and, while an order is still open,
// reloads the page every few seconds so the credit shows as soon as the payment provider confirms
// it. Served by the ledger itself with the chart library, so the page's Content-Security-Policy
// needs no 'unsafe-inline' and the page works offline.
(function () {
  "use strict";
  var chart = document.getElementById("usage-chart");
  var table = document.getElementById("usage-table");
  if (chart && table && window.LedgerCharts) {
    var charts = window.LedgerCharts;
    var info = chart.dataset;
    var days = charts.daysUpTo(info.last, Number(info.days));
    var empty = function () { return days.map(function () { return null; }); };
    var units = Array.prototype.map.call(table.querySelectorAll("thead th[data-unit]"), function (th) {
      return { unit: th.getAttribute("data-unit"), label: th.textContent, values: empty() };
    });
    var cost = empty();
    Array.prototype.forEach.call(table.querySelectorAll("tbody tr[data-day]"), function (row) {
      var at = days.indexOf(row.getAttribute("data-day"));
      if (at < 0) { return; }
      cost[at] = Number(row.getAttribute("data-cost"));
      Array.prototype.forEach.call(row.querySelectorAll("td[data-value]"), function (cell, i) {
        units[i].values[at] = Number(cell.getAttribute("data-value"));
      });
    });
    var style = getComputedStyle(document.documentElement);
    var colours = [style.getPropertyValue("--warn").trim() || "#a05f00", "#6a1b9a", "#2e7d32"];
    charts.draw(chart, {
      days: days,
      locale: info.locale,
      bars: [{
        label: table.querySelector("thead th[data-cost]").textContent,
        colour: style.getPropertyValue("--accent").trim() || "#0277bd",
        values: cost,
      }],
      lines: units.map(function (use, i) {
        return { label: use.label, unit: use.unit, colour: colours[i % colours.length], values: use.values };
      }),
      money: function (minor) { return charts.money(minor, info.currency, Number(info.exponent), info.locale); },
    });
  }

  var delay = Number(document.body.getAttribute("data-refresh-after-ms"));
  if (!(delay > 0)) {
    return;
  }
  // After a form post the address ends in /checkout or /orders/N/refresh: reload the page itself.
  var page = location.pathname.replace(/\/(checkout|orders\/\d+\/refresh)$/, "");
  setTimeout(function () {
    location.replace(page);
  }, delay);
})();
