// trainq dashboard: a job's page. Its status and place in the queue, its spec and provenance,
// every event of its stream, and a chart per recorded metric (with its val_ twin) that grows
// as each epoch finishes.
"use strict";
var trainqJob = (function () {
  var T = trainq, $ = trainq.$, text = trainq.text;
  var WAITING_MS = 2000;  // while queued no event comes: its place is read again this often
  var COLORS = ["#2563eb", "#dc2626"];

  // A metric's chart: "val_loss" is drawn with "loss".
  function family(name) { return name.indexOf("val_") === 0 ? name.slice(4) : name; }

  function makeChart(holder, name, series) {
    var box = document.createElement("div");
    var title = document.createElement("h2");
    title.textContent = name;
    var el = document.createElement("div");
    el.id = "chart-" + name;
    el.className = "chart";
    el.dataset.points = "0";
    box.appendChild(title);
    box.appendChild(el);
    holder.appendChild(box);
    var data = [[]].concat(series.map(function () { return []; }));
    var chart = new uPlot({
      width: 520, height: 240, scales: { x: { time: false } },
      axes: [{ label: "epoch", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, {}],
      series: [{ label: "epoch" }].concat(series.map(function (s, i) {
        return { label: s, stroke: COLORS[i % 2], points: { size: 6 } };
      })),
    }, data, el);
    return {
      names: series, data: data, chart: chart,
      add: function (epoch, metrics) {
        data[0].push(epoch);
        series.forEach(function (s, i) { data[i + 1].push(metrics[s] == null ? null : metrics[s]); });
        chart.setData(data);
        el.dataset.points = String(data[0].length);
      },
      clear: function () {
        data.forEach(function (a) { a.length = 0; });
        chart.setData(data);
        el.dataset.points = "0";
      },
    };
  }

  // The charts, one per metric family, made as their metrics first appear (loss from the start).
  function charts(holder) {
    var all = window.trainqCharts = {};
    all.loss = makeChart(holder, "loss", ["loss", "val_loss"]);
    return {
      add: function (epoch, metrics) {
        var fresh = {};
        Object.keys(metrics).forEach(function (name) {
          var f = family(name);
          if (!all[f]) { (fresh[f] = fresh[f] || []).push(name); }
        });
        Object.keys(fresh).forEach(function (f) {
          var series = fresh[f].sort(function (a, b) { return a.length - b.length; });
          all[f] = makeChart(holder, f, series);
        });
        Object.keys(all).forEach(function (f) { all[f].add(epoch, metrics); });
      },
      clear: function () { Object.keys(all).forEach(function (f) { all[f].clear(); }); },
    };
  }

  // Every recorded metric: its value at the last epoch, its lowest and its highest.
  function metricsTable(history) {
    var seen = {};
    history.forEach(function (row) {
      Object.keys(row.metrics).forEach(function (name) {
        var v = row.metrics[name];
        var s = seen[name] = seen[name] || { last: null, min: null, max: null };
        if (v == null) { return; }
        s.last = v;
        s.min = s.min == null ? v : Math.min(s.min, v);
        s.max = s.max == null ? v : Math.max(s.max, v);
      });
    });
    var body = document.querySelector("#metrics tbody");
    body.innerHTML = "";
    Object.keys(seen).sort().forEach(function (name) {
      var row = body.insertRow();
      row.dataset.metric = name;
      [name, seen[name].last, seen[name].min, seen[name].max].forEach(function (v) {
        row.insertCell().textContent = v == null ? "" : T.fmt(v);
      });
    });
  }

  function datasetText(d) {
    if (!d) { return "none"; }
    return (d.name || d.id) + " (SHA-256 " + d.sha256 + ")";
  }

  function provenance(p) {
    $("provenance").hidden = !p;
    $("provenance-none").hidden = !!p;
    if (!p) { return; }
    text("prov-seed", p.seed + " (from the " + p.seed_from + ")");
    text("prov-spec-sha256", p.spec_sha256);
    text("prov-dataset", datasetText(p.dataset));
    text("prov-validation", datasetText(p.validation_dataset));
    text("prov-versions", Object.keys(p.versions).map(function (k) {
      return k + " " + p.versions[k];
    }).join(", "));
    text("prov-threads", "intra-op " + p.threads.intra_op + ", inter-op " + p.threads.inter_op);
    text("prov-worker", p.worker + " on " + p.host);
    text("prov-attempt", p.attempt + ", started " + T.when(p.started_at)
         + (p.finished_at ? ", finished " + T.when(p.finished_at) : ""));
  }

  function eventText(ev) {
    if (ev.type === "epoch") {
      return "epoch " + ev.epoch + ": " + T.metricsText(ev.metrics) + " in "
        + ev.duration_s.toFixed(2) + " s";
    }
    var parts = [ev.status || ev.type];
    if (ev.attempt != null) { parts.push("attempt " + ev.attempt); }
    if (ev.reason) { parts.push(ev.reason); }
    if (ev.error) { parts.push(ev.error); }
    if (ev.test_metrics) { parts.push("test: " + T.metricsText(ev.test_metrics)); }
    if (ev.model != null) { parts.push(ev.model ? "model kept" : "no model"); }
    return parts.join(" — ");
  }

  function page(jobId) {
    var drawn = charts($("charts"));
    var history = [];
    var lastId = 0, waiting = null, pending = null, shownSpec = false;

    function showJob(job) {
      text("job-name", job.name);
      text("status", job.status);
      $("status").className = "status " + job.status;
      $("progress").value = job.progress.percent;
      var eta = job.progress.eta_seconds ? ", about " + Math.round(job.progress.eta_seconds) + " s left" : "";
      text("progress-text", job.progress.text + " (" + job.progress.percent + "%" + eta + ")");
      $("queue").hidden = !job.queue;
      if (job.queue) {
        text("queue-position", job.queue.position);
        text("queue-jobs", job.queue.position === 1 ? "job starts" : "jobs start");
        text("queue-reason", job.queue.reason);
      }
      text("error", job.error);
      text("test-metrics", job.test_metrics ? "test: " + T.metricsText(job.test_metrics) : "");
      $("cancel").hidden = T.FINISHED.indexOf(job.status) >= 0;
      $("download").hidden = !(job.model && T.WITH_MODEL.indexOf(job.status) >= 0);
      $("again").href = "/submit?from=" + encodeURIComponent(job.id);
      $("sweep").hidden = !job.sweep_id;
      if (job.sweep_id) {
        text("sweep-trial", job.trial);
        $("sweep-link").href = "/sweeps/" + job.sweep_id;
        text("sweep-link", job.sweep_id.slice(0, 12));
      }
      if (!shownSpec) {
        text("spec", JSON.stringify(job.spec, null, 2));
        shownSpec = true;
      }
      provenance(job.provenance);
      if (job.status === "queued" && !waiting) {
        waiting = window.setTimeout(function () { waiting = null; refresh(); }, WAITING_MS);
      }
    }

    function refresh() {
      return T.api("GET", "/api/v1/jobs/" + jobId).then(function (r) { return r.json(); })
        .then(showJob).catch(function (e) { text("message", e.message); });
    }
    function soon() {  // one read for a burst of events (the stream replays them at first)
      if (!pending) {
        pending = window.setTimeout(function () { pending = null; refresh(); }, 200);
      }
    }

    function onEvent(ev) {
      lastId = ev.id;
      var row = document.querySelector("#events tbody").insertRow();
      row.dataset.type = ev.type;
      row.insertCell().textContent = ev.id;
      row.insertCell().textContent = T.when(ev.created_at);
      row.insertCell().textContent = ev.type;
      row.insertCell().textContent = eventText(ev);
      if (ev.type === "epoch") {
        drawn.add(ev.epoch, ev.metrics);
        history.push(ev);
        metricsTable(history);
        var h = document.querySelector("#history tbody").insertRow();
        h.insertCell().textContent = ev.epoch;
        h.insertCell().textContent = T.metricsText(ev.metrics);
        h.insertCell().textContent = ev.duration_s.toFixed(2) + " s";
      } else if (ev.type === "status" && ev.status === "running") {
        // A new attempt trains from the first epoch again.
        drawn.clear();
        history = [];
        metricsTable(history);
        document.querySelector("#history tbody").innerHTML = "";
      }
      soon();
    }

    function follow() {
      T.stream("/api/v1/jobs/" + jobId + "/events", function () { return lastId; }, onEvent,
               refresh);
    }

    $("cancel").onclick = function () {
      T.api("POST", "/api/v1/jobs/" + jobId + "/cancel").then(refresh)
        .catch(function (e) { text("message", "cancel: " + e.message); });
    };
    $("download").onclick = function () {
      T.api("GET", "/api/v1/jobs/" + jobId + "/model?format=keras").then(function (r) { return r.blob(); })
        .then(function (blob) {
          var a = document.createElement("a");
          a.href = URL.createObjectURL(blob);
          a.download = "trainq-" + jobId + ".keras";
          document.body.appendChild(a); a.click(); a.remove();
        }).catch(function (e) { text("message", "download: " + e.message); });
    };
    refresh().then(follow);
  }

  return { page: page };
})();
