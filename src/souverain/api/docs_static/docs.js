// The API reference page: reads /openapi.json and lists every operation, grouped by tag.
// Self-written and served from the package, so the page works offline and loads nothing
// from another site.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// Resolve local `$ref`s for display, stopping at cycles and at a fixed depth.
function resolve(doc, schema, seen, depth) {
  if (depth > 6 || schema === null || typeof schema !== "object") return schema;
  if (Array.isArray(schema)) return schema.map((item) => resolve(doc, item, seen, depth + 1));
  if (typeof schema.$ref === "string") {
    const name = schema.$ref.split("/").pop();
    if (seen.has(name)) return { $ref: name };
    const target = doc.components.schemas[name];
    return resolve(doc, target, new Set([...seen, name]), depth + 1);
  }
  const out = {};
  for (const [key, value] of Object.entries(schema)) out[key] = resolve(doc, value, seen, depth + 1);
  return out;
}

function schemaBlock(doc, schema) {
  return el("pre", {}, JSON.stringify(resolve(doc, schema, new Set(), 0), null, 2));
}

function operationView(doc, path, method, op) {
  const body = el("div", { class: "body" },
    el("p", {}, op.description || ""));
  if (op.parameters && op.parameters.length) {
    const rows = op.parameters.map((p) => el("tr", {},
      el("td", {}, el("code", {}, p.name)), el("td", {}, p.in),
      el("td", {}, p.required ? "required" : "optional"),
      el("td", {}, el("code", {}, JSON.stringify(p.schema))), el("td", {}, p.description || "")));
    body.append(el("h4", {}, "Parameters"),
      el("table", {}, el("tr", {}, ...["name", "in", "", "schema", ""].map((h) => el("th", {}, h))), ...rows));
  }
  if (op.requestBody) {
    for (const [type, media] of Object.entries(op.requestBody.content)) {
      body.append(el("h4", {}, "Request body ", el("span", { class: "muted" }, type)), schemaBlock(doc, media.schema));
    }
  }
  body.append(el("h4", {}, "Responses"));
  for (const [status, shared] of Object.entries(op.responses)) {
    const response = shared.$ref ? doc.components.responses[shared.$ref.split("/").pop()] : shared;
    const types = Object.keys(response.content || {}).join(", ");
    const item = el("details", {}, el("summary", {}, el("code", {}, status), " ", response.description,
      types ? el("span", { class: "muted" }, " (" + types + ")") : null));
    for (const [type, media] of Object.entries(response.content || {})) {
      if (type === "text/event-stream") item.append(el("p", {}, "Each event:"));
      if (media.schema && (media.schema.$ref || media.schema.properties)) item.append(schemaBlock(doc, media.schema));
    }
    body.append(item);
  }
  const security = (op.security || []).map((s) => Object.keys(s).join(" + ") || "none").join(" or ");
  body.append(el("p", { class: "muted" }, "Credentials: " + (security || "none")));
  const details = el("details", { class: "op", "data-search": [method, path, op.summary, op.description].join(" ").toLowerCase() },
    el("summary", {}, el("span", { class: "method " + method }, method.toUpperCase()), " ",
      el("code", {}, path), " ", el("span", { class: "muted" }, op.summary || "")),
    body);
  return details;
}

function render(doc) {
  const main = document.getElementById("api");
  main.textContent = "";
  const byTag = new Map();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operationView(doc, path, method, op));
    }
  }
  for (const [tag, views] of byTag) main.append(el("section", {}, el("h2", {}, tag), ...views));
  main.append(el("p", { class: "muted", id: "count" }, views_count(byTag) + " operations"));
}

function views_count(byTag) {
  let total = 0;
  for (const views of byTag.values()) total += views.length;
  return total;
}

document.getElementById("filter").addEventListener("input", (event) => {
  const words = event.target.value.toLowerCase().split(/\s+/).filter(Boolean);
  for (const op of document.querySelectorAll("details.op")) {
    const text = op.getAttribute("data-search");
    op.hidden = !words.every((word) => text.includes(word));
  }
});

fetch("/openapi.json")
  .then((response) => response.json())
  .then(render)
  .catch((error) => { document.getElementById("api").textContent = "Could not load /openapi.json: " + error; });
