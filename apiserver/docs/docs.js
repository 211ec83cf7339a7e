// Renders the API reference from /openapi.json with plain DOM calls: no
// framework, no network access beyond this server.
"use strict";
(function () {
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, v);
    }
    for (const k of kids) if (k != null) e.append(k);
    return e;
  };
  let spec;
  const resolve = (s, depth) => {
    if (!s || depth > 6) return s;
    if (s.$ref) {
      const name = s.$ref.split("/").pop();
      return resolve(spec.components.schemas[name], depth + 1);
    }
    const out = Array.isArray(s) ? [] : {};
    for (const [k, v] of Object.entries(s)) {
      if (k === "$schema") continue;
      out[k] = (v && typeof v === "object") ? resolve(v, depth + 1) : v;
    }
    return out;
  };
  const example = (s, depth) => {
    s = resolve(s, 0);
    if (!s || depth > 5) return null;
    if (s.examples && s.examples.length) return s.examples[0];
    if (s.example !== undefined) return s.example;
    if (s.enum) return s.enum[0];
    const t = Array.isArray(s.type) ? s.type.find((x) => x !== "null") : s.type;
    switch (t) {
      case "object": {
        const o = {};
        for (const [k, v] of Object.entries(s.properties || {})) {
          if (k === "$schema") continue;
          o[k] = example(v, depth + 1);
        }
        return o;
      }
      case "array": return [example(s.items, depth + 1)].filter((x) => x !== null);
      case "integer": case "number": return s.minimum || 0;
      case "boolean": return false;
      case "string": return s.format === "date-time" ? "2026-01-01T00:00:00Z" : "string";
    }
    return null;
  };
  const render = () => {
    const main = document.getElementById("main");
    const toc = document.getElementById("toc");
    main.textContent = "";
    document.getElementById("version").textContent = spec.info.title + " " + spec.info.version;
    main.append(el("h1", null, spec.info.title), el("p", null, spec.info.description || ""));
    const byTag = new Map();
    for (const [path, item] of Object.entries(spec.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const tag = (op.tags && op.tags[0]) || "Other";
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push({ path, method: method.toUpperCase(), op });
      }
    }
    for (const [tag, ops] of byTag) {
      toc.append(el("h2", null, tag));
      main.append(el("h2", null, tag));
      for (const { path, method, op } of ops) {
        const id = op.operationId;
        toc.append(el("a", { href: "#" + id, "data-k": (id + " " + path + " " + (op.summary || "")).toLowerCase() }, op.summary || id));
        const box = el("section", { class: "op", id });
        box.append(el("h3", null, el("span", { class: "m " + method }, method), el("code", null, path)));
        box.append(el("div", null, el("b", null, op.summary || ""), " ", el("span", { class: "muted" }, "(" + id + ")")));
        if (op.description) box.append(el("p", null, op.description.replace(/`/g, "")));
        if (op.parameters && op.parameters.length) {
          const t = el("table", null, el("tr", null, el("th", null, "Parameter"), el("th", null, "In"), el("th", null, "Type"), el("th", null, "Description")));
          for (const p of op.parameters) {
            const s = resolve(p.schema, 0) || {};
            t.append(el("tr", null, el("td", null, el("code", null, p.name), p.required ? " *" : ""), el("td", null, p.in),
              el("td", null, (s.type || "") + (s.enum ? " (" + s.enum.join(", ") + ")" : "")), el("td", null, p.description || s.description || "")));
          }
          box.append(t);
        }
        const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
        if (body) {
          box.append(el("div", null, el("b", null, "Request body")), el("pre", null, JSON.stringify(example(body.schema, 0), null, 2)));
          const d = el("details", null, el("summary", null, "Request schema"), el("pre", null, JSON.stringify(resolve(body.schema, 0), null, 2)));
          box.append(d);
        }
        const codes = Object.keys(op.responses || {});
        box.append(el("div", null, el("b", null, "Responses: "), codes.join(", ")));
        const ok = codes.find((c) => c.startsWith("2"));
        const content = ok && op.responses[ok].content;
        if (content) {
          const [ct, mt] = Object.entries(content)[0];
          box.append(el("details", null, el("summary", null, "Response " + ok + " (" + ct + ")"),
            el("pre", null, JSON.stringify(example(mt.schema, 0), null, 2))));
        }
        main.append(box);
      }
    }
    if (location.hash) { const t = document.getElementById(location.hash.slice(1)); if (t) t.scrollIntoView(); }
  };
  document.getElementById("filter").addEventListener("input", (e) => {
    const q = e.target.value.toLowerCase();
    for (const a of document.querySelectorAll("#toc a")) a.style.display = a.dataset.k.includes(q) ? "" : "none";
  });
  fetch("/openapi.json").then((r) => r.json()).then((s) => { spec = s; render(); })
    .catch((err) => { document.getElementById("main").textContent = "Cannot load /openapi.json: " + err; });
})();
