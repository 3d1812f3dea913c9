// trainq dashboard: the job list and a job page whose curves grow with the event stream (the
// sweep pages, in sweeps.js, use the helpers this returns).
"use strict";
var trainq = (function () {
  var KEY = "trainq_token";
  var FINISHED = ["succeeded", "failed", "cancelled", "pruned"];
  // The final states whose job may have a trained model (a cancelled one: if it kept one).
  var WITH_MODEL = ["succeeded", "pruned", "cancelled"];

  function token() { return window.localStorage.getItem(KEY); }
  function $(id) { return document.getElementById(id); }
  function text(id, value) { $(id).textContent = value == null ? "" : String(value); }
  function fmt(v) { return typeof v === "number" ? v.toFixed(4) : String(v); }
  function metricsText(m) {
    return Object.keys(m || {}).map(function (k) { return k + "=" + fmt(m[k]); }).join(" ");
  }

  function api(method, path) {
    return fetch(path, { method: method, headers: { Authorization: "Bearer " + token() } })
      .then(function (r) {
        if (r.status === 401) { signOut(); throw new Error("your token was refused"); }
        if (!r.ok) {
          return r.json().then(function (b) { throw new Error(b.error.message); },
                               function () { throw new Error(r.status + " " + r.statusText); });
        }
        return r;
      });
  }

  function signOut() { window.localStorage.removeItem(KEY); window.location.reload(); }

  function start(page) {
    $("signout").onclick = signOut;
    if (!token()) {
      $("signin").hidden = false;
      $("signin").onsubmit = function (e) {
        e.preventDefault();
        var value = $("token").value.trim();
        fetch("/api/v1/jobs?per_page=1", { headers: { Authorization: "Bearer " + value } })
          .then(function (r) {
            if (!r.ok) { text("signin-error", "That token was refused."); return; }
            window.localStorage.setItem(KEY, value);
            window.location.reload();
          });
      };
      return;
    }
    $("content").hidden = false;
    $("signout").hidden = false;
    page();
  }

  function statusCell(row, status) {
    var span = document.createElement("span");
    span.className = "status " + status;
    span.textContent = status;
    row.insertCell().appendChild(span);
  }

  function when(timestamp) { return (timestamp || "").slice(0, 19).replace("T", " "); }

  function listPage() {
    function refresh() {
      api("GET", "/api/v1/jobs?per_page=50").then(function (r) { return r.json(); })
        .then(function (page) {
          var body = document.querySelector("#jobs tbody");
          body.innerHTML = "";
          $("jobs-empty").hidden = page.jobs.length > 0;
          page.jobs.forEach(function (job) {
            var row = body.insertRow();
            row.dataset.jobId = job.id;
            var link = document.createElement("a");
            link.href = "/jobs/" + job.id;
            link.textContent = job.id.slice(0, 12);
            row.insertCell().appendChild(link);
            row.insertCell().textContent = job.name;
            statusCell(row, job.status);
            var bar = document.createElement("progress");
            bar.max = 100; bar.value = job.progress.percent;
            var cell = row.insertCell();
            cell.appendChild(bar);
            cell.appendChild(document.createTextNode(" " + job.progress.text));
            row.insertCell().textContent = when(job.created_at);
          });
        })
        .catch(function (e) { text("message", e.message); });
    }
    refresh();
    window.setInterval(refresh, 3000);
  }

  function makeChart(id, series) {
    var el = $(id);
    var opts = {
      width: 520, height: 240,
      scales: { x: { time: false } },
      axes: [{ label: "epoch" }, {}],
      series: [{ label: "epoch" }].concat(series.map(function (s, i) {
        return { label: s, stroke: ["#2563eb", "#dc2626"][i % 2], points: { size: 6 } };
      })),
    };
    var data = [[]].concat(series.map(function () { return []; }));
    var chart = new uPlot(opts, data, el);
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

  function jobPage(jobId) {
    var charts = {
      loss: makeChart("chart-loss", ["loss", "val_loss"]),
      accuracy: makeChart("chart-accuracy", ["accuracy", "val_accuracy"]),
    };
    window.trainqCharts = charts;
    var lastId = 0;

    function showJob(job) {
      text("job-name", job.name);
      text("status", job.status);
      $("status").className = "status " + job.status;
      $("progress").value = job.progress.percent;
      var eta = job.progress.eta_seconds ? ", about " + Math.round(job.progress.eta_seconds) + " s left" : "";
      text("progress-text", job.progress.text + " (" + job.progress.percent + "%" + eta + ")");
      text("error", job.error);
      text("test-metrics", job.test_metrics ? "test: " + metricsText(job.test_metrics) : "");
      $("cancel").hidden = FINISHED.indexOf(job.status) >= 0;
      $("download").hidden = !(job.model && WITH_MODEL.indexOf(job.status) >= 0);
      $("sweep").hidden = !job.sweep_id;
      if (job.sweep_id) {
        text("sweep-trial", job.trial);
        $("sweep-link").href = "/sweeps/" + job.sweep_id;
        text("sweep-link", job.sweep_id.slice(0, 12));
      }
    }

    function refresh() {
      return api("GET", "/api/v1/jobs/" + jobId).then(function (r) { return r.json(); })
        .then(showJob).catch(function (e) { text("message", e.message); });
    }

    function onEvent(ev) {
      lastId = ev.id;
      if (ev.type === "epoch") {
        charts.loss.add(ev.epoch, ev.metrics);
        charts.accuracy.add(ev.epoch, ev.metrics);
        var row = document.querySelector("#history tbody").insertRow();
        row.insertCell().textContent = ev.epoch;
        row.insertCell().textContent = metricsText(ev.metrics);
        row.insertCell().textContent = ev.duration_s.toFixed(2) + " s";
      } else if (ev.type === "status" && ev.status === "running") {
        // A new attempt trains from the first epoch again.
        charts.loss.clear(); charts.accuracy.clear();
        document.querySelector("#history tbody").innerHTML = "";
      }
      refresh();
    }

    function parse(block) {
      var data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("data:") === 0) { data.push(line.slice(5).trim()); }
      });
      if (data.length) { onEvent(JSON.parse(data.join("\n"))); }
    }

    function follow() {
      var headers = { Authorization: "Bearer " + token(), "Last-Event-ID": String(lastId) };
      fetch("/api/v1/jobs/" + jobId + "/events", { headers: headers }).then(function (r) {
        if (!r.ok) { throw new Error("events: " + r.status); }
        var reader = r.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) { return refresh(); }  // the job has ended
            buffer += decoder.decode(chunk.value, { stream: true });
            var end;
            while ((end = buffer.indexOf("\n\n")) >= 0) {
              parse(buffer.slice(0, end));
              buffer = buffer.slice(end + 2);
            }
            return pump();
          });
        }
        return pump();
      }).catch(function () { window.setTimeout(follow, 2000); });  // resume after lastId
    }

    $("cancel").onclick = function () {
      api("POST", "/api/v1/jobs/" + jobId + "/cancel").then(refresh)
        .catch(function (e) { text("message", "cancel: " + e.message); });
    };
    $("download").onclick = function () {
      api("GET", "/api/v1/jobs/" + jobId + "/model?format=keras").then(function (r) { return r.blob(); })
        .then(function (blob) {
          var a = document.createElement("a");
          a.href = URL.createObjectURL(blob);
          a.download = "trainq-" + jobId + ".keras";
          document.body.appendChild(a); a.click(); a.remove();
        }).catch(function (e) { text("message", "download: " + e.message); });
    };
    refresh().then(follow);
  }

  return {
    start: start, listPage: listPage, jobPage: jobPage,
    // for sweeps.js
    api: api, $: $, text: text, fmt: fmt, statusCell: statusCell, when: when, FINISHED: FINISHED,
  };
})();
