// trainq dashboard: submit a job spec from the browser. The spec (the documented example, or a
// job's own with ?from=<job id>) is laid out as one input per value, named by its path as the
// API names fields ("fit.epochs", "model.layers[1].config.units"); a 422 puts each error beside
// the input of the field it names (or of the nearest part of the spec that holds it).
"use strict";
var trainqSubmit = (function () {
  var T = trainq, $ = trainq.$, text = trainq.text;

  function key(path, k) { return typeof k === "number" ? path + "[" + k + "]" : (path ? path + "." + k : k); }
  function scalars(list) {
    return list.every(function (v) { return v === null || typeof v !== "object"; });
  }

  // Lays the spec out; returns its inputs, each with the path (as keys) where its value goes.
  function layout(spec, holder) {
    var inputs = [];
    holder.innerHTML = "";
    function walk(value, path, keys, into) {
      var isList = Array.isArray(value);
      if (value !== null && typeof value === "object" && !(isList && scalars(value))) {
        var set = document.createElement("fieldset");
        set.dataset.field = path;
        if (path) {
          var legend = document.createElement("legend");
          legend.textContent = keys.length ? String(keys[keys.length - 1]) : path;
          if (typeof keys[keys.length - 1] === "number") {  // a list's item: a layer names its class
            legend.textContent = "[" + legend.textContent + "]"
              + (typeof value.class_name === "string" ? " " + value.class_name : "");
          }
          set.appendChild(legend);
        }
        (isList ? value.map(function (_, i) { return i; }) : Object.keys(value)).forEach(function (k) {
          walk(value[k], key(path, k), keys.concat([k]), set);
        });
        into.appendChild(set);
        return;
      }
      var label = document.createElement("label");
      label.className = "field";
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = String(keys[keys.length - 1]);
      var input = document.createElement("input");
      input.dataset.field = path;
      input.name = path;
      input.kind = typeof value === "string" ? "string" : typeof value === "number" ? "number"
        : typeof value === "boolean" ? "boolean" : "json";
      if (input.kind === "boolean") {
        input.type = "checkbox";
        input.checked = value;
      } else {
        input.type = "text";
        input.value = input.kind === "string" ? value : JSON.stringify(value);
        if (input.kind === "number") { input.inputMode = "decimal"; }
      }
      label.appendChild(name);
      label.appendChild(input);
      into.appendChild(label);
      inputs.push({ keys: keys, input: input });
    }
    walk(spec, "", [], holder);
    return inputs;
  }

  // The value an input stands for; what does not parse is sent as typed, for the API to name.
  function valueOf(input) {
    var raw = input.value;
    if (input.kind === "boolean") { return input.checked; }
    if (input.kind === "string") { return raw; }
    var trimmed = raw.trim();
    if (input.kind === "number" && trimmed !== "" && isFinite(Number(trimmed))) { return Number(trimmed); }
    try { return JSON.parse(trimmed); } catch (e) { return raw; }
  }

  function build(spec, inputs) {
    var out = JSON.parse(JSON.stringify(spec));
    inputs.forEach(function (f) {
      var at = out;
      f.keys.slice(0, -1).forEach(function (k) { at = at[k]; });
      at[f.keys[f.keys.length - 1]] = valueOf(f.input);
    });
    return out;
  }

  function clearErrors() {
    document.querySelectorAll(".field-error").forEach(function (e) { e.remove(); });
    document.querySelectorAll("[aria-invalid]").forEach(function (e) {
      e.removeAttribute("aria-invalid");
    });
    text("submit-error", "");
  }

  // Beside the input (or the fieldset) of the field named, or of the nearest part that holds it.
  function place(field, message) {
    var path = field || "";
    var found = null;
    while (true) {
      found = document.querySelector('#fields [data-field="' + CSS.escape(path) + '"]');
      if (found || !path) { break; }
      path = path.replace(/(\[\d+\]|\.?[^.[]+)$/, "");
    }
    var note = document.createElement("span");
    note.className = "field-error error";
    note.dataset.for = field || "";
    var prefix = field + ": ";
    var said = message.indexOf(prefix) === 0 ? message.slice(prefix.length) : message;
    note.textContent = path === field ? said : field + ": " + said;
    if (!found || !path) {
      $("submit-errors").appendChild(note);
      return;
    }
    found.setAttribute("aria-invalid", "true");
    if (found.tagName === "FIELDSET") {
      var first = found.firstElementChild;
      found.insertBefore(note, first && first.tagName === "LEGEND" ? first.nextSibling : first);
    } else {
      found.parentNode.appendChild(note);
    }
  }

  function showErrors(error) {
    text("submit-error", error.message);
    var details = error.details || {};
    var errors = details.errors || (details.field != null
      ? [{ field: details.field, message: error.message }] : []);
    errors.forEach(function (e) { place(e.field, e.message); });
    var first = document.querySelector("#fields [aria-invalid]");
    if (first) { first.scrollIntoView({ block: "center" }); }
  }

  // A job's stored spec holds every field, those left out as null (each the field's default):
  // they go, so that the page shows what was chosen. Inside a Keras config ("config", the model
  // document's "json") a null is the user's own value and stays.
  function withoutNulls(value) {
    if (Array.isArray(value)) { return value.map(withoutNulls); }
    if (value === null || typeof value !== "object") { return value; }
    var out = {};
    Object.keys(value).forEach(function (key) {
      if (value[key] === null) { return; }
      out[key] = key === "config" || key === "json" ? value[key] : withoutNulls(value[key]);
    });
    return out;
  }

  function page() {
    var from = new URLSearchParams(window.location.search).get("from");
    var spec = null, inputs = [];

    function use(s) {
      spec = s;
      inputs = layout(spec, $("fields"));
      $("spec-json").value = JSON.stringify(spec, null, 2);
      clearErrors();
    }

    $("use-json").onclick = function () {
      try {
        use(JSON.parse($("spec-json").value));
      } catch (e) {
        text("json-error", "not JSON: " + e.message);
        return;
      }
      text("json-error", "");
    };
    $("fields").addEventListener("input", function () {
      $("spec-json").value = JSON.stringify(build(spec, inputs), null, 2);
    });

    $("submit-form").onsubmit = function (e) {
      e.preventDefault();
      if (!spec) { return; }  // the job's spec it starts from has not come
      clearErrors();
      var body = build(spec, inputs);
      $("submit").disabled = true;
      fetch("/api/v1/jobs", {
        method: "POST", body: JSON.stringify(body),
        headers: { Authorization: "Bearer " + T.token(), "Content-Type": "application/json" },
      }).then(function (r) {
        return r.json().then(function (answer) {
          if (r.status === 202) {
            window.location.href = "/jobs/" + answer.id;
            return;
          }
          $("submit").disabled = false;
          if (r.status === 401) { T.api("GET", "/api/v1/me"); }  // signs out
          showErrors(answer.error || { message: r.status + " " + r.statusText });
        });
      }).catch(function (err) {
        $("submit").disabled = false;
        text("submit-error", err.message);
      });
    };

    if (from) {
      text("from", "Starting from job ");
      var link = document.createElement("a");
      link.href = "/jobs/" + from;
      link.textContent = from.slice(0, 12);
      $("from").appendChild(link);
      T.api("GET", "/api/v1/jobs/" + encodeURIComponent(from)).then(function (r) { return r.json(); })
        .then(function (job) { use(withoutNulls(job.spec)); })
        .catch(function (err) { text("message", err.message); });
    } else {
      use(JSON.parse($("spec-example").textContent));
    }
  }

  return { page: page };
})();
