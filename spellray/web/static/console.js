// The run page's charts: one uPlot chart per metric (index on x) and per hardware series
// (seconds since the first sample on x), from /runs/<id>/charts.json; redrawn every few
// seconds while the run goes. A search's page draws its metric per trial the same way, from
// /searches/<id>/chart.json, whose "x" names its x axis ("run").
(function () {
  "use strict";
  var REFRESH_MS = 5000;

  function chart(box, title, xLabel, xs, ys) {
    var figure = document.createElement("figure");
    figure.className = "chart";
    figure.setAttribute("data-name", title);
    var caption = document.createElement("figcaption");
    var known = ys.filter(function (y) { return y !== null; });
    caption.textContent = title + " (" + known.length + " points, last " +
      (known.length ? known[known.length - 1] : "-") + ")";
    figure.appendChild(caption);
    box.appendChild(figure);
    var width = Math.min(560, Math.max(260, box.clientWidth - 24));
    new uPlot({
      width: width, height: 200,
      scales: { x: { time: false } },
      axes: [{ label: xLabel }, {}],
      series: [{ label: xLabel }, { label: title, stroke: "#2a6fdb", width: 2 }],
    }, [xs, ys], figure);
  }

  function draw(box, data) {
    box.textContent = "";
    var names = Object.keys(data.metrics).sort();
    var xLabel = data.x || "index";
    names.forEach(function (name) {
      chart(box, name, xLabel, data.metrics[name][0], data.metrics[name][1]);
    });
    Object.keys(data.stats).forEach(function (name) {
      chart(box, name, "seconds", data.stats[name][0], data.stats[name][1]);
    });
    if (!box.children.length) {
      var none = document.createElement("p");
      none.textContent = "No metrics or hardware stats yet.";
      box.appendChild(none);
    }
  }

  function load(box) {
    fetch(box.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (data) { draw(box, data); })
      .catch(function (status) { box.textContent = "Charts could not load (" + status + ")."; })
      .finally(function () {
        if (box.getAttribute("data-live")) { setTimeout(function () { load(box); }, REFRESH_MS); }
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("charts");
    if (box && window.uPlot) { load(box); }
    // An action the server refused says why (the answer is one line of text).
    document.body.addEventListener("htmx:responseError", function (event) {
      var flash = document.getElementById("flash");
      if (flash) { flash.textContent = event.detail.xhr.responseText || "The server refused."; }
    });
    // A later action that went through clears the last refusal.
    document.body.addEventListener("htmx:afterRequest", function (event) {
      var flash = document.getElementById("flash");
      if (flash && event.detail.successful) { flash.textContent = ""; }
    });
    // Copy buttons: the text of the element they name (selected too, where the clipboard
    // is not allowed: a console over plain http on another host).
    document.body.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-copy]");
      if (!button) { return; }
      var source = document.getElementById(button.getAttribute("data-copy"));
      var range = document.createRange();
      range.selectNodeContents(source);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(source.textContent).then(function () {
          button.textContent = "Copied";
        });
      }
    });
  });
})();
