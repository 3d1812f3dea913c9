// trainq dashboard: signing in, the job list with its filters (read again every 3 s), and the
// helpers the other pages' scripts use (job.js, submit.js, sweeps.js, models.js, compare.js).
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

  // The list's filters, as the page's address keeps them (?status=&name=&from=&to=) and as the
  // API takes them: the "to" day is included, so the API is asked for jobs before the next one.
  var FILTERS = ["status", "name", "from", "to"];
  function nextDay(day) {
    var d = new Date(day + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + 1);
    return d.toISOString().slice(0, 10);
  }
  function filterQuery(f) {
    var q = new URLSearchParams({ per_page: "50" });
    if (f.status) { q.set("status", f.status); }
    if (f.name) { q.set("name", f.name); }
    if (f.from) { q.set("created_after", f.from); }
    if (f.to) { q.set("created_before", nextDay(f.to)); }
    return q.toString();
  }

  function listPage() {
    var picked = {};  // job ids ticked to compare, kept across refreshes
    var asked = 0;  // the newest request: an older answer that comes after it is dropped
    function pickedIds() { return Object.keys(picked).filter(function (id) { return picked[id]; }); }
    $("compare-selected").onclick = function () {
      window.location.href = "/compare?jobs=" + pickedIds().join(",");
    };
    var address = new URLSearchParams(window.location.search);
    FILTERS.forEach(function (k) { $("filter-" + k).value = address.get(k) || ""; });
    function filters() {
      var f = {};
      FILTERS.forEach(function (k) { f[k] = $("filter-" + k).value.trim(); });
      return f;
    }
    function filtered() {
      var f = filters(), q = new URLSearchParams();
      FILTERS.forEach(function (k) { if (f[k]) { q.set(k, f[k]); } });
      var search = q.toString();
      window.history.replaceState(null, "", window.location.pathname + (search ? "?" + search : ""));
      refresh();
    }
    var typing = null;
    $("filter-name").addEventListener("input", function () {
      window.clearTimeout(typing);
      typing = window.setTimeout(filtered, 300);
    });
    ["status", "from", "to"].forEach(function (k) {
      $("filter-" + k).addEventListener("change", filtered);
    });
    $("filters").onsubmit = function (e) { e.preventDefault(); filtered(); };
    $("filters-clear").onclick = function () {
      FILTERS.forEach(function (k) { $("filter-" + k).value = ""; });
      filtered();
    };

    function show(page, f) {
      var body = document.querySelector("#jobs tbody");
      body.innerHTML = "";
      var any = FILTERS.some(function (k) { return f[k]; });
      $("jobs-empty").hidden = page.jobs.length > 0 || any;
      $("jobs-none-match").hidden = page.jobs.length > 0 || !any;
      text("jobs-count", page.total > page.jobs.length
        ? "the newest " + page.jobs.length + " of " + page.total
        : page.total + (page.total === 1 ? " job" : " jobs"));
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
        var tick = document.createElement("input");
        tick.type = "checkbox";
        tick.className = "pick";
        tick.checked = !!picked[job.id];
        tick.onchange = function () {
          picked[job.id] = tick.checked;
          $("compare-selected").disabled = pickedIds().length < 2;
        };
        row.insertCell().appendChild(tick);
      });
    }

    function refresh() {
      var f = filters(), n = ++asked;
      api("GET", "/api/v1/jobs?" + filterQuery(f)).then(function (r) { return r.json(); })
        .then(function (page) {
          if (n !== asked) { return; }
          text("message", "");
          show(page, f);
        })
        .catch(function (e) { if (n === asked) { text("message", e.message); } });
    }
    refresh();
    window.setInterval(refresh, 3000);
  }

  // Reads a server-sent event stream with the token (EventSource sends no header), resuming
  // after lastId() when it breaks; ended() once the stream has ended (the job with it).
  function stream(path, lastId, onEvent, ended) {
    function parse(block) {
      var data = [];
      block.split("\n").forEach(function (line) {
        if (line.indexOf("data:") === 0) { data.push(line.slice(5).trim()); }
      });
      if (data.length) { onEvent(JSON.parse(data.join("\n"))); }
    }
    function follow() {
      var headers = { Authorization: "Bearer " + token(), "Last-Event-ID": String(lastId()) };
      fetch(path, { headers: headers }).then(function (r) {
        if (!r.ok) { throw new Error("events: " + r.status); }
        var reader = r.body.getReader();
        var decoder = new TextDecoder();
        var buffer = "";
        function pump() {
          return reader.read().then(function (chunk) {
            if (chunk.done) { return ended(); }
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
      }).catch(function () { window.setTimeout(follow, 2000); });  // resume after lastId()
    }
    follow();
  }

  return {
    start: start, listPage: listPage,
    // for job.js, submit.js, sweeps.js, models.js and compare.js
    api: api, $: $, text: text, fmt: fmt, statusCell: statusCell, when: when, FINISHED: FINISHED,
    WITH_MODEL: WITH_MODEL, metricsText: metricsText, stream: stream, token: token,
  };
})();
