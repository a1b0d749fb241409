// The tenant's pay page, while an order is still open: reload it every few seconds so the
// credit shows as soon as the payment provider confirms it. Served by the ledger itself, so the
// page's Content-Security-Policy needs no 'unsafe-inline'.
(function () {
  "use strict";
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
