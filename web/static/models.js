// trainq dashboard: the model registry. Each registered model with its aliases and versions
// (the job that made each, its test metrics, the aliases pointing at it), read again every 3 s.
"use strict";
var trainqModels = (function () {
  var T = trainq, $ = trainq.$, text = trainq.text;
  var EVERY_MS = 3000;

  function json(r) { return r.json(); }
  function aliasesText(aliases) {
    return Object.keys(aliases).map(function (a) { return a + " → " + aliases[a]; }).join(", ");
  }

  function section(model) {
    var box = document.createElement("section");
    box.className = "model";
    box.dataset.model = model.name;
    var title = document.createElement("h2");
    title.textContent = model.name;
    box.appendChild(title);
    var aliases = document.createElement("p");
    aliases.className = "aliases";
    aliases.textContent = "aliases: " + (aliasesText(model.aliases) || "none");
    box.appendChild(aliases);
    var table = document.createElement("table");
    table.className = "versions";
    table.createTHead().insertRow().innerHTML =
      "<th>Version</th><th>Job</th><th>Aliases</th><th>Test metrics</th><th>Registered</th>";
    var body = table.createTBody();
    model.versions.slice().reverse().forEach(function (v) {  // the newest first
      var row = body.insertRow();
      row.dataset.version = v.version;
      row.insertCell().textContent = String(v.version);
      var job = document.createElement("a");
      job.href = "/jobs/" + v.job_id;
      job.textContent = v.job_id.slice(0, 12);
      row.insertCell().appendChild(job);
      row.insertCell().textContent = v.aliases.join(", ");
      row.insertCell().textContent = T.metricsText(v.metrics.test);
      row.insertCell().textContent = T.when(v.created_at);
    });
    box.appendChild(table);
    return box;
  }

  function listPage() {
    function refresh() {
      T.api("GET", "/api/v1/models").then(json).then(function (listed) {
        return Promise.all(listed.models.map(function (m) {
          return T.api("GET", "/api/v1/models/" + encodeURIComponent(m.name)).then(json);
        }));
      }).then(function (models) {
        var holder = $("models");
        holder.innerHTML = "";
        $("models-empty").hidden = models.length > 0;
        models.forEach(function (m) { holder.appendChild(section(m)); });
      }).catch(function (e) { text("message", e.message); })
        .then(function () { window.setTimeout(refresh, EVERY_MS); });
    }
    refresh();
  }

  return { listPage: listPage };
})();
