// The entity page: POST the text to /v1/entities and show the answer (Doc.to_dict()) inline, displaCy style.
// Text from the user or the model is only ever put into the page as text nodes, never as HTML.
"use strict";

// displaCy's colours for the types GMB shares with it; other types get a colour from their name.
const COLOURS = {
  per: "#aa9cfc", org: "#7aecec", geo: "#feca74", gpe: "#ff9561",
  tim: "#bfe1d9", art: "#f0d0ff", eve: "#ffeb80", nat: "#c887fb",
};

function colour(label) {
  const known = COLOURS[label.toLowerCase()];
  if (known) return known;
  let hash = 0;
  for (const ch of label) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360}, 70%, 80%)`;
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (name === "style") node.style.cssText = value; else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// What each label means (GET /v1/model's descriptions): shown in the legend and in the tooltips.
let DESCRIPTIONS = {};

function described(label) {
  const text = DESCRIPTIONS[label];
  return text ? `${label}: ${text}` : label;
}

function badge(label) {
  return el("span", { style: `background: ${colour(label)}`, title: described(label) }, label);
}

function showLegend(labels, descriptions) {
  DESCRIPTIONS = descriptions || {};
  const legend = document.getElementById("legend");
  legend.replaceChildren(...labels.map((label) => el("li",
    { "data-label": label, style: `background: ${colour(label)}`, title: described(label) },
    el("span", { class: "name" }, label), " ", el("span", { class: "description" }, DESCRIPTIONS[label] || ""))));
}

// Entity offsets are in characters (code points, as Python counts them); JavaScript strings index
// UTF-16 units, so the text is split into code points first.
function showDoc(doc) {
  const chars = Array.from(doc.text);
  const parts = [];
  let at = 0;
  for (const ent of doc.entities) {
    if (ent.start > at) parts.push(chars.slice(at, ent.start).join(""));
    parts.push(el("mark", {
      class: "entity", "data-label": ent.label, "data-start": ent.start, "data-end": ent.end,
      title: `${described(ent.label)} (score ${ent.score.toFixed(3)})`, style: `background: ${colour(ent.label)}`,
    }, chars.slice(ent.start, ent.end).join(""), el("span", { class: "label" }, ent.label)));
    at = ent.end;
  }
  if (at < chars.length) parts.push(chars.slice(at).join(""));
  document.getElementById("result").replaceChildren(...parts);
  const rows = doc.entities.map((ent) => el("tr", { "data-label": ent.label },
    el("td", { class: "label" }, badge(ent.label)),
    el("td", { class: "text" }, ent.text),
    el("td", { class: "score" }, ent.score.toFixed(3)),
    el("td", { class: "offsets" }, `${ent.start}–${ent.end}`)));
  document.querySelector("#entities tbody").replaceChildren(...rows);
}

function setStatus(message, isError) {
  const status = document.getElementById("status");
  status.textContent = message;
  status.className = isError ? "error" : "";
}

async function describeModel() {
  try {
    const response = await fetch("/v1/model");
    const model = await response.json();
    showLegend(model.labels, model.descriptions);
    const f1 = model.validation_f1 == null ? "" : `, validation entity F1 ${Number(model.validation_f1).toFixed(4)}`;
    document.getElementById("model").textContent =
      `${model.labels.length} entity types, ${model.tags.length} tags${f1}; ner-fast ${model.versions.runtime.ner_fast}`;
  } catch (err) {
    document.getElementById("model").textContent = `could not read /v1/model: ${err}`;
  }
}

async function submit(event) {
  event.preventDefault();
  const text = document.getElementById("text").value;
  setStatus("tagging…", false);
  document.body.dataset.state = "busy";
  try {
    const response = await fetch("/v1/entities", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text }),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    showDoc(answer);
    const n = answer.entities.length;
    setStatus(`${n} ${n === 1 ? "entity" : "entities"}`, false);
  } catch (err) {
    setStatus(err.message, true);
  } finally {
    document.body.dataset.state = "done";
  }
}

document.getElementById("form").addEventListener("submit", submit);
document.getElementById("text").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) document.getElementById("form").requestSubmit();
});
describeModel();
