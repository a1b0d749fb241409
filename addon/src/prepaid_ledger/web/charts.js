// Daily bar charts for the ledger's pages (the landlord's account page, the tenant's pay page),
// drawn with uPlot, which the ledger serves itself (ui/vendor/: no CDN, the pages work offline).
// A page hands over the account's local days ("YYYY-MM-DD") and money in minor units; the money
// axis is written from whole minor units by the page's own formatter, never through a float.
// No words of its own: each page passes its labels, already in the reader's language. The
// numbers are in a table next to each chart as well: the canvas is for the eye only.
(function () {
  "use strict";
  const DAY_SECONDS = 86400;
  // A calendar day as the instant its bar stands at: midnight UTC, which no time zone moves.
  const stamp = (iso) => Date.parse(`${iso}T00:00:00Z`) / 1000;
  const iso = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 10);
  // Money axis steps in minor units: whole numbers only (1, 2, 5, 10, 20, 50, ...).
  const MINOR_STEPS = [];
  for (let power = 1; power <= 1e12; power *= 10) { MINOR_STEPS.push(power, 2 * power, 5 * power); }
  const drawn = new WeakMap();

  // Today's date in TIMEZONE (the account's zone, whatever the browser's is; the browser's own
  // when it does not know that zone).
  function today(timeZone) {
    const fields = { year: "numeric", month: "2-digit", day: "2-digit" };
    let format;
    try { format = new Intl.DateTimeFormat("en-US", { ...fields, timeZone }); } catch { format = new Intl.DateTimeFormat("en-US", fields); }
    const parts = {};
    for (const part of format.formatToParts(new Date())) { parts[part.type] = part.value; }
    return `${parts.year}-${parts.month}-${parts.day}`;
  }

  // The COUNT days up to and including LAST, oldest first.
  function daysUpTo(last, count) {
    const end = stamp(last);
    return Array.from({ length: count }, (_, i) => iso(end - (count - 1 - i) * DAY_SECONDS));
  }

  // A day as the page's language writes it (English: the unambiguous 2026-12-06).
  function dayText(day, locale) {
    if (locale === "en") { return day; }
    return new Date(stamp(day) * 1000).toLocaleDateString(locale, { timeZone: "UTC" });
  }

  // Money from minor units: the exact decimal as text (Intl formats it without a float's rounding).
  function money(minor, currency, exponent, locale) {
    let digits = String(Math.abs(minor)).padStart(exponent + 1, "0");
    if (exponent > 0) { digits = `${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`; }
    const plain = `${minor < 0 ? "-" : ""}${digits}`;
    if (locale !== "en") {
      try {
        return new Intl.NumberFormat(locale, { style: "currency", currency, minimumFractionDigits: exponent, maximumFractionDigits: exponent }).format(plain);
      } catch { /* a code the browser does not know: the plain form below */ }
    }
    return `${plain} ${currency}`;
  }

  // Room for an axis's longest label (uPlot's own recipe: measured on the chart's canvas).
  function axisSize(plot, values, index, cycle) {
    const axis = plot.axes[index];
    if (cycle > 1) { return axis._size; }
    let size = axis.ticks.size + axis.gap;
    const longest = (values || []).reduce((a, b) => (String(b).length > a.length ? String(b) : a), "");
    if (longest) {
      plot.ctx.font = axis.font[0];
      size += plot.ctx.measureText(longest).width / devicePixelRatio;
    }
    return Math.ceil(size);
  }

  const upToMax = (plot, min, max) => [0, max > 0 ? max * 1.08 : 1];

  // Draw daily bars into ELEMENT, replacing what was drawn there before.
  //   days:  ["YYYY-MM-DD", ...] oldest first
  //   bars:  [{label, colour, values: [minor units or null per day]}], stacked in this order
  //   lines: [{label, colour, unit, values: [number or null per day]}], each on its own axis
  //   money: (minor) => text; locale: the page's language; height: in CSS pixels
  // Returns the uPlot instance, or null when the library is missing (the table still has it all).
  function draw(element, { days, bars, lines = [], money: moneyText, locale, height = 200 }) {
    const previous = drawn.get(element);
    if (previous) {
      previous.observer.disconnect();
      previous.plot.destroy();
      drawn.delete(element);
    }
    element.replaceChildren();
    if (typeof window.uPlot !== "function") { return null; }
    const uPlot = window.uPlot;
    const ink = getComputedStyle(element).color;
    const grid = { stroke: "rgba(128, 128, 128, 0.25)", width: 1 };
    const shortDay = new Intl.DateTimeFormat(locale, { month: "short", day: "numeric", timeZone: "UTC" });
    // Stacked: each bar series holds the running total and starts where the one below ends.
    const totals = days.map(() => 0);
    const stacked = bars.map((bar) => bar.values.map((value, i) => {
      if (value === null || value === undefined) { return totals[i] || null; }
      totals[i] += value;
      return totals[i];
    }));
    const bar = uPlot.paths.bars({ size: [0.75, 48], align: 0 });
    const plot = new uPlot({
      width: Math.max(element.clientWidth, 200),
      height,
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
      legend: { show: false },
      cursor: { show: false },
      scales: {
        x: { time: true, range: (u, min, max) => [min - DAY_SECONDS / 2, max + DAY_SECONDS / 2] },
        money: { range: upToMax },
        ...Object.fromEntries(lines.map((line) => [line.unit, { range: upToMax }])),
      },
      axes: [
        { stroke: ink, grid, ticks: grid, space: 64, values: (u, ticks) => ticks.map((t) => shortDay.format(new Date(t * 1000))) },
        { scale: "money", stroke: ink, grid, ticks: grid, incrs: MINOR_STEPS, size: axisSize, values: (u, ticks) => ticks.map(moneyText) },
        ...lines.map((line) => ({
          scale: line.unit, side: 1, stroke: line.colour, grid: { show: false }, ticks: grid, size: axisSize,
          values: (u, ticks) => ticks.map((t) => `${new Intl.NumberFormat(locale).format(t)} ${line.unit}`),
        })),
      ],
      series: [
        {},
        ...bars.map((b) => ({ label: b.label, scale: "money", fill: b.colour, stroke: b.colour, width: 0, paths: bar, points: { show: false } })),
        ...lines.map((line) => ({ label: line.label, scale: line.unit, stroke: line.colour, width: 2, points: { show: true, size: 5, fill: line.colour } })),
      ],
      bands: bars.slice(1).map((b, i) => ({ series: [i + 2, i + 1] })),
    }, [days.map(stamp), ...stacked, ...lines.map((line) => line.values)], element);
    const observer = new ResizeObserver(() => {
      const width = Math.max(element.clientWidth, 200);
      if (width !== plot.width) { plot.setSize({ width, height }); }
    });
    observer.observe(element);
    drawn.set(element, { plot, observer });
    return plot;
  }

  window.LedgerCharts = { draw, today, daysUpTo, dayText, money };
})();
