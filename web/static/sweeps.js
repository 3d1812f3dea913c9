// trainq dashboard: the sweeps list and a sweep's page (its trials, the objective against each
// searched value, the best trials' curves, links to compare the best or the ticked trials),
// read again every 2 s while the sweep runs.
"use strict";
var trainqSweeps = (function () {
  var T = trainq, $ = trainq.$, text = trainq.text;
  var COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"];
  var GROUPS = ["succeeded", "pruned", "other"];  // the scatter's series, by trial status
  var GROUP_COLORS = ["#2563eb", "#9ca3af", "#ea580c"];
  var BEST_CURVES = 5;
  var COMPARE_BEST = 5;
  var EVERY_MS = 2000;
  var WHOLE = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];  // axis steps of epochs and int values

  function json(r) { return r.json(); }
  function link(href, label) {
    var a = document.createElement("a");
    a.href = href;
    a.textContent = label;
    return a;
  }
  function shown(v) {
    if (typeof v === "number") { return Number.isInteger(v) ? String(v) : v.toPrecision(4); }
    return typeof v === "string" ? v : JSON.stringify(v);
  }
  function countsText(trials) {
    return Object.keys(trials || {}).filter(function (k) { return trials[k] > 0; })
      .map(function (k) { return k + " " + trials[k]; }).join(", ");
  }
  function objectiveText(o) { return o.metric + " (" + o.direction + ")"; }
  // Negative when trial a is better than b by the objective; trials without a value come last.
  function better(direction) {
    var sign = direction === "minimize" ? 1 : -1;
    return function (a, b) {
      if (a.value == null || b.value == null) {
        return (a.value == null) - (b.value == null) || a.trial - b.trial;
      }
      return sign * (a.value - b.value) || a.trial - b.trial;
    };
  }

  function listPage() {
    function refresh() {
      T.api("GET", "/api/v1/sweeps").then(json).then(function (page) {
        var body = document.querySelector("#sweeps tbody");
        body.innerHTML = "";
        $("sweeps-empty").hidden = page.sweeps.length > 0;
        page.sweeps.forEach(function (s) {
          var row = body.insertRow();
          row.dataset.sweepId = s.id;
          row.insertCell().appendChild(link("/sweeps/" + s.id, s.id.slice(0, 12)));
          row.insertCell().textContent = s.name;
          T.statusCell(row, s.status);
          row.insertCell().textContent = countsText(s.trials) + " (at most " + s.max_trials + ")";
          row.insertCell().textContent = objectiveText(s.objective);
          var best = row.insertCell();
          if (s.best) {
            best.appendChild(link("/jobs/" + s.best.job_id, T.fmt(s.best.value)));
            best.appendChild(document.createTextNode(" (trial " + s.best.trial + ")"));
          }
          row.insertCell().textContent = T.when(s.created_at);
        });
      }).catch(function (e) { text("message", e.message); });
    }
    refresh();
    window.setInterval(refresh, 3000);
  }

  // One small scatter chart: the objective (y) against one searched value (x), a series per group.
  function scatter(holder, path, param, metric) {
    var box = document.createElement("div");
    box.className = "scatter";
    box.dataset.path = path;
    box.dataset.points = "0";
    var title = document.createElement("h3");
    title.textContent = path;
    box.appendChild(title);
    holder.appendChild(box);
    var choices = param.type === "categorical" ? param.choices.map(JSON.stringify) : null;
    var x = { time: false };
    var axis = { label: path.split(".").pop() };
    if (choices) {
      x.range = function () { return [-0.5, choices.length - 0.5]; };
      axis.splits = function () { return choices.map(function (_, i) { return i; }); };
      axis.values = function (u, splits) {
        return splits.map(function (i) { return shown(param.choices[i]); });
      };
    } else {
      x.range = function () { return [param.low, param.high]; };
      if (param.log) { x.distr = 3; }
      if (param.type === "int") { axis.incrs = WHOLE; }
      axis.values = function (u, splits) {
        return splits.map(function (v) { return v == null ? "" : String(Number(v.toPrecision(2))); });
      };
    }
    var opts = {
      width: 340, height: 200, legend: { show: false },
      scales: { x: x }, axes: [axis, { label: metric }],
      series: [{}].concat(GROUPS.map(function (g, i) {
        return { label: g, stroke: GROUP_COLORS[i], paths: function () { return null; },
                 points: { show: true, size: 8, fill: GROUP_COLORS[i], stroke: GROUP_COLORS[i] } };
      })),
    };
    var data = [[]].concat(GROUPS.map(function () { return []; }));
    var chart = new uPlot(opts, data, box);
    return function (tried) {
      var points = tried.filter(function (t) { return t.value != null && path in t.params; })
        .map(function (t) {
          var v = t.params[path];
          return { x: choices ? choices.indexOf(JSON.stringify(v)) : v, y: t.value, status: t.status };
        })
        .sort(function (a, b) { return a.x - b.x; });
      data = [points.map(function (p) { return p.x; })].concat(GROUPS.map(function (g) {
        return points.map(function (p) {
          var group = GROUPS.indexOf(p.status) >= 0 ? p.status : "other";
          return group === g ? p.y : null;
        });
      }));
      chart.setData(data);
      box.dataset.points = String(points.length);
      return data;
    };
  }

  // The objective per epoch of the best few trials, from their jobs' histories, overlaid.
  function curves(el, metric) {
    var histories = {};  // job id -> {key, rows}: fetched again only when the trial moved on
    var chart = null, shownKey = "";
    return function (best) {
      var stale = best.filter(function (t) {
        var h = histories[t.job_id];
        return !h || h.key !== t.status + "/" + t.epochs_done;
      });
      return Promise.all(stale.map(function (t) {
        return T.api("GET", "/api/v1/jobs/" + t.job_id).then(json).then(function (job) {
          histories[t.job_id] = { key: t.status + "/" + t.epochs_done, rows: job.history };
        });
      })).then(function () {
        var epochs = {};
        best.forEach(function (t) {
          histories[t.job_id].rows.forEach(function (h) { epochs[h.epoch] = true; });
        });
        var xs = Object.keys(epochs).map(Number).sort(function (a, b) { return a - b; });
        var data = [xs].concat(best.map(function (t) {
          var at = {};
          histories[t.job_id].rows.forEach(function (h) { at[h.epoch] = h.metrics[metric]; });
          return xs.map(function (e) { return at[e] == null ? null : at[e]; });
        }));
        var key = best.map(function (t) { return t.job_id; }).join(",");
        if (!chart || key !== shownKey) {  // another set of best trials: another chart
          if (chart) { chart.destroy(); }
          chart = new uPlot({
            width: 700, height: 280, scales: { x: { time: false } },
            axes: [{ label: "epoch", incrs: WHOLE }, { label: metric }],
            series: [{ label: "epoch" }].concat(best.map(function (t, i) {
              return { label: "trial " + t.trial, stroke: COLORS[i % COLORS.length],
                       width: 2, points: { size: 6 } };
            })),
          }, data, el);
          shownKey = key;
        } else {
          chart.setData(data);
        }
        el.dataset.series = String(best.length);
        el.dataset.points = String(data.slice(1).reduce(function (n, ys) {
          return n + ys.filter(function (y) { return y != null; }).length;
        }, 0));
        return { trials: best.map(function (t) { return t.trial; }), data: data };
      });
    };
  }

  function sweepPage(sweepId) {
    var sort = "trial";  // or "best", "worst": by the objective, clicked on its header
    var charts = null, last = null;
    var state = window.trainqSweep = { scatter: {}, curves: null };
    var picked = {};  // job ids of the trials ticked to compare, kept as the table is redrawn
    function pickedIds() { return Object.keys(picked).filter(function (id) { return picked[id]; }); }
    $("compare-ticked").onclick = function () {
      window.location.href = "/compare?jobs=" + pickedIds().join(",");
    };

    function header(s) {
      var row = document.querySelector("#trials thead tr");
      var names = ["Trial", "Job", "Status"].concat(Object.keys(s.space));
      names.forEach(function (name, i) {
        var th = document.createElement("th");
        th.textContent = name;
        if (i > 2) { th.className = "path"; }
        row.appendChild(th);
      });
      var objective = document.createElement("th");
      objective.id = "sort-objective";
      objective.className = "sortable";
      objective.title = "sort by the objective (best first, click again for worst first)";
      objective.onclick = function () {
        sort = sort === "best" ? "worst" : "best";
        if (last) { table(last); }
      };
      row.appendChild(objective);
      var epochs = document.createElement("th");
      epochs.textContent = "Epochs";
      row.appendChild(epochs);
    }

    function table(s) {
      var order = s.tried.slice();
      var cmp = better(s.objective.direction);
      if (sort === "best") { order.sort(cmp); }
      if (sort === "worst") {
        order.sort(function (a, b) {
          return (a.value == null) - (b.value == null) || -cmp(a, b);
        });
      }
      var arrow = { trial: "", best: " \u25bc best first", worst: " \u25b2 worst first" }[sort];
      text("sort-objective", s.objective.metric + arrow);
      $("trials").dataset.sort = sort;
      var body = document.querySelector("#trials tbody");
      body.innerHTML = "";
      order.forEach(function (t) {
        var row = body.insertRow();
        row.dataset.trial = String(t.trial);
        row.dataset.jobId = t.job_id;
        row.dataset.value = t.value == null ? "" : String(t.value);
        if (s.best && s.best.job_id === t.job_id) { row.className = "best"; }
        var first = row.insertCell();  // the trial's number, with its box to tick to compare
        var tick = document.createElement("input");
        tick.type = "checkbox";
        tick.className = "pick";
        tick.title = "compare this trial";
        tick.checked = !!picked[t.job_id];
        tick.onchange = function () {
          picked[t.job_id] = tick.checked;
          $("compare-ticked").disabled = pickedIds().length < 2;
        };
        first.appendChild(tick);
        first.appendChild(document.createTextNode(String(t.trial)));
        row.insertCell().appendChild(link("/jobs/" + t.job_id, t.job_id.slice(0, 12)));
        T.statusCell(row, t.status);
        Object.keys(s.space).forEach(function (path) {
          row.insertCell().textContent = path in t.params ? shown(t.params[path]) : "";
        });
        row.insertCell().textContent = t.value == null ? "" : T.fmt(t.value);
        row.insertCell().textContent = t.epochs_done + "/" + t.epochs;
      });
    }

    // The best trials (at most COMPARE_BEST of them, the same as the curves) side by side.
    function compareBest(s) {
      var best = s.tried.filter(function (t) { return t.value != null; })
        .sort(better(s.objective.direction)).slice(0, COMPARE_BEST);
      $("compare-best").hidden = best.length < 2;
      $("compare-best").href = "/compare?jobs=" + best.map(function (t) { return t.job_id; }).join(",");
      text("compare-best", "Compare the best " + best.length + " trials");
    }

    function facts(s) {
      text("sweep-name", s.name);
      text("status", s.status);
      $("status").className = "status " + s.status;
      text("counts", countsText(s.trials));
      text("objective", objectiveText(s.objective));
      text("sampler", s.sampler);
      text("pruner", s.pruner);
      text("limits", s.tried.length + " asked for, at most " + s.max_trials + ", "
           + s.max_concurrent + " at a time" + (s.finished_at ? "; finished " + T.when(s.finished_at) : ""));
      var best = $("best");
      best.innerHTML = "";
      if (s.best) {
        best.appendChild(link("/jobs/" + s.best.job_id, "trial " + s.best.trial));
        best.appendChild(document.createTextNode(": " + s.objective.metric + " = "
          + T.fmt(s.best.value) + " with " + Object.keys(s.best.params).map(function (p) {
            return p + " = " + shown(s.best.params[p]);
          }).join(", ")));
      } else {
        best.textContent = "none yet";
      }
      $("cancel").hidden = s.status !== "running";
    }

    function show(s) {
      last = s;
      if (!charts) {
        header(s);
        charts = { scatter: {}, curves: curves($("chart-curves"), s.objective.metric) };
        Object.keys(s.space).forEach(function (path) {
          charts.scatter[path] = scatter($("scatter"), path, s.space[path], s.objective.metric);
        });
      }
      facts(s);
      table(s);
      compareBest(s);
      Object.keys(charts.scatter).forEach(function (path) {
        state.scatter[path] = charts.scatter[path](s.tried);
      });
      var best = s.tried.filter(function (t) { return t.value != null; })
        .sort(better(s.objective.direction)).slice(0, BEST_CURVES);
      return charts.curves(best).then(function (c) { state.curves = c; });
    }

    function refresh() {
      return T.api("GET", "/api/v1/sweeps/" + sweepId).then(json).then(show);
    }

    function poll() {
      refresh().then(function () {
        if (last.status === "running") { window.setTimeout(poll, EVERY_MS); }
      }, function (e) {
        text("message", e.message);
        window.setTimeout(poll, EVERY_MS);
      });
    }

    $("cancel").onclick = function () {
      T.api("POST", "/api/v1/sweeps/" + sweepId + "/cancel").then(json).then(show)
        .catch(function (e) { text("message", "cancel: " + e.message); });
    };
    poll();
  }

  return { listPage: listPage, sweepPage: sweepPage };
})();
