// trainq dashboard: jobs side by side (/compare?jobs=A,B,C): the spec paths where they differ
// (every path with the toggle), each metric's final and best value, and one recorded metric's
// curves overlaid, a series per job.
"use strict";
var trainqCompare = (function () {
  var T = trainq, $ = trainq.$;
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04"];

  function shown(v) {
    if (v == null) { return "—"; }
    if (typeof v === "number") { return Number.isInteger(v) ? String(v) : v.toPrecision(4); }
    return typeof v === "string" ? v : JSON.stringify(v);
  }
  function header(table, labels) {
    var row = table.querySelector("thead tr");
    row.innerHTML = "";
    labels.forEach(function (l) {
      var th = document.createElement("th");
      th.textContent = l;
      row.appendChild(th);
    });
  }
  function jobLink(job) {
    var a = document.createElement("a");
    a.href = "/jobs/" + job.id;
    a.textContent = job.id.slice(0, 8) + " " + job.name;
    return a;
  }

  function specTable(found, all) {
    var table = $("spec"), body = table.querySelector("tbody");
    header(table, ["spec path"].concat(found.jobs.map(function (j) { return j.id.slice(0, 8); })));
    body.innerHTML = "";
    found.spec.forEach(function (row) {
      if (!all && !row.differs) { return; }
      var tr = body.insertRow();
      tr.dataset.path = row.path;
      if (row.differs) { tr.className = "differs"; }
      tr.insertCell().textContent = row.path;
      row.values.forEach(function (v) { tr.insertCell().textContent = shown(v); });
    });
    var n = found.spec.filter(function (r) { return r.differs; }).length;
    $("differing").textContent = "(" + n + " of " + found.spec.length + " paths differ)";
  }

  function metricsTable(found, names) {
    var table = $("metrics"), body = table.querySelector("tbody");
    header(table, ["metric"].concat(found.jobs.map(function (j) { return j.id.slice(0, 8); })));
    body.innerHTML = "";
    names.forEach(function (name) {
      var tr = body.insertRow();
      tr.insertCell().textContent = name;
      found.jobs.forEach(function (j) {
        var m = j.metrics[name];
        tr.insertCell().textContent = m ? shown(m.final) + " (best " + shown(m.best) + ")" : "—";
      });
    });
  }

  function draw(found, metric, state) {
    var el = $("chart-compare");
    var longest = Math.max.apply(null, found.jobs.map(function (j) {
      return j.metrics[metric] ? j.metrics[metric].curve.length : 0;
    }));
    var xs = [];
    for (var e = 1; e <= longest; e++) { xs.push(e); }
    var data = [xs].concat(found.jobs.map(function (j) {
      var curve = j.metrics[metric] ? j.metrics[metric].curve : [];
      return xs.map(function (_, i) { return curve[i] == null ? null : curve[i]; });
    }));
    if (state.chart) { state.chart.destroy(); }
    state.chart = new uPlot({
      width: 700, height: 300, scales: { x: { time: false } },
      axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] },
             { label: metric }],
      series: [{ label: "epoch" }].concat(found.jobs.map(function (j, i) {
        return { label: j.id.slice(0, 8) + " " + j.name, stroke: COLORS[i % COLORS.length],
                 width: 2, points: { size: 6 } };
      })),
    }, data, el);
    el.dataset.series = String(found.jobs.length);
    el.dataset.points = String(data.slice(1).reduce(function (n, ys) {
      return n + ys.filter(function (y) { return y != null; }).length;
    }, 0));
    state.metric = metric;
    state.data = data;
  }

  function page() {
    var ids = new URLSearchParams(window.location.search).get("jobs") || "";
    var state = window.trainqComparison = { chart: null, metric: null, data: null, found: null };
    return T.api("GET", "/api/v1/compare?jobs=" + encodeURIComponent(ids))
      .then(function (r) { return r.json(); })
      .then(function (found) {
        if (found.error) {
          $("compare-jobs").textContent = found.error.message;
          return;
        }
        state.found = found;
        var jobs = $("compare-jobs");
        jobs.innerHTML = "";
        found.jobs.forEach(function (j, i) {
          if (i) { jobs.appendChild(document.createTextNode(", ")); }
          jobs.appendChild(jobLink(j));
        });
        specTable(found, $("show-all").checked);
        $("show-all").addEventListener("change", function () {
          specTable(found, $("show-all").checked);
        });
        var names = {};
        found.jobs.forEach(function (j) {
          Object.keys(j.metrics).forEach(function (n) { names[n] = true; });
        });
        names = Object.keys(names).sort();
        metricsTable(found, names);
        var select = $("metric");
        select.innerHTML = "";
        names.forEach(function (n) {
          var o = document.createElement("option");
          o.value = o.textContent = n;
          select.appendChild(o);
        });
        if (names.length) {
          select.value = names.indexOf("loss") >= 0 ? "loss" : names[0];
          draw(found, select.value, state);
        }
        select.addEventListener("change", function () { draw(found, select.value, state); });
      });
  }

  return { page: page };
})();
