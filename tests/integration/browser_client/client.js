// A CDS Client as a browser runs one: discovery, prefetch from the FHIR server, the hook
// call, cards rendered, a suggestion accepted and reported as feedback. Every call to the
// CDS Service is cross-origin and carries a client JWT, so each one is CORS-preflighted.
// Client JWTs come from this page's own server (/token): an EHR keeps its signing key there.
"use strict";

const params = new URLSearchParams(location.search);
const config = {
  service: params.get("service"),
  fhir: params.get("fhir"),
  fhirToken: params.get("fhirToken"),
  patientId: params.get("patient"),
  userId: params.get("user"),
  hook: params.get("hook") || "patient-view",
  evaluationTime: params.get("evaluationTime"),
};

function setStatus(element, state, text) {
  const node = document.getElementById(element);
  node.dataset.state = state;
  node.textContent = text;
}

function uuid4() {
  // crypto.randomUUID needs a secure context; an EHR page on plain http is not one.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

async function clientJwt(audience) {
  const response = await fetch(`/token?aud=${encodeURIComponent(audience)}`);
  if (!response.ok) throw new Error(`token: HTTP ${response.status}`);
  return response.text();
}

async function cds(method, path, body) {
  const url = config.service + path;
  const headers = { Authorization: `Bearer ${await clientJwt(url)}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!response.ok) throw new Error(`${method} ${path}: HTTP ${response.status}`);
  return response.json();
}

// CDS Hooks 2.0 "Prefetch tokens": {{context.<field>}} and the user identifiers.
const USER_TOKENS = {
  userPractitionerId: "Practitioner",
  userPractitionerRoleId: "PractitionerRole",
  userPatientId: "Patient",
  userRelatedPersonId: "RelatedPerson",
};

function renderTemplate(template, context) {
  return template.replace(/\{\{\s*([^{}]+?)\s*\}\}/g, (_, token) => {
    if (token in USER_TOKENS) {
      const [type, id] = context.userId.split("/");
      if (type !== USER_TOKENS[token]) throw new Error(`cannot fill {{${token}}}`);
      return id;
    }
    const value = context[token.replace(/^context\./, "")];
    if (value === undefined) throw new Error(`cannot fill {{${token}}}`);
    return encodeURIComponent(value).replace(/%2F/g, "/");
  });
}

async function fhirGet(url) {
  return fetch(url, { headers: { Authorization: `Bearer ${config.fhirToken}`, Accept: "application/fhir+json" } });
}

// One key: a read gives the resource (null if it does not exist), a search a Bundle of every
// page; a key the client cannot satisfy is left out, as the spec asks.
async function prefetchOne(template, context) {
  let query;
  try {
    query = renderTemplate(template, context);
  } catch (error) {
    return undefined;
  }
  let response = await fhirGet(`${config.fhir}/${query}`);
  if (!query.includes("?")) {
    if (response.status === 404) return null;
    return response.ok ? response.json() : undefined;
  }
  const entries = [];
  for (;;) {
    if (!response.ok) return undefined;
    const page = await response.json();
    entries.push(...(page.entry || []));
    const next = (page.link || []).find((link) => link.relation === "next");
    if (!next) break;
    response = await fhirGet(next.url);
  }
  return { resourceType: "Bundle", type: "searchset", total: entries.length, entry: entries };
}

async function prefetch(templates, context) {
  const keys = Object.keys(templates);
  const values = await Promise.all(keys.map((key) => prefetchOne(templates[key], context)));
  const result = {};
  keys.forEach((key, index) => {
    if (values[index] !== undefined) result[key] = values[index];
  });
  return result;
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderCard(service, card) {
  const node = element("div", "card");
  node.dataset.indicator = card.indicator;
  node.dataset.uuid = card.uuid || "";
  node.dataset.rule = (card.source.topic && card.source.topic.code) || "";
  const head = element("p");
  head.append(element("span", "indicator", card.indicator), " ", element("span", "summary", card.summary));
  node.append(head, element("p", "source", `Source: ${card.source.label}`));
  if (card.detail) node.append(element("div", "detail", card.detail));
  for (const suggestion of card.suggestions || []) {
    const button = element("button", "suggestion", suggestion.label);
    button.dataset.uuid = suggestion.uuid || "";
    button.addEventListener("click", () => accept(service, card, suggestion));
    node.append(button);
  }
  const links = element("ul", "links");
  for (const link of card.links || []) {
    const item = element("li");
    const anchor = element("a", "link", link.label);
    anchor.href = link.url;
    anchor.dataset.type = link.type;
    item.append(anchor);
    links.append(item);
  }
  node.append(links);
  return node;
}

async function accept(service, card, suggestion) {
  setStatus("feedback", "sending", "sending");
  try {
    const receipt = await cds("POST", `/cds-services/${service.id}/feedback`, {
      feedback: [
        {
          card: card.uuid,
          outcome: "accepted",
          acceptedSuggestions: [{ id: suggestion.uuid }],
          outcomeTimestamp: new Date().toISOString(),
        },
      ],
    });
    const node = document.getElementById("feedback");
    node.dataset.stored = String(receipt.stored);
    setStatus("feedback", "sent", `accepted "${suggestion.label}" (stored ${receipt.stored})`);
  } catch (error) {
    setStatus("feedback", "error", String(error));
  }
}

async function run() {
  const discovery = await cds("GET", "/cds-services");
  const service = discovery.services.find((entry) => entry.hook === config.hook);
  if (!service) throw new Error(`no service for ${config.hook}`);
  document.getElementById("service-id").textContent = service.id;
  const context = { userId: config.userId, patientId: config.patientId };
  const request = {
    hook: config.hook,
    hookInstance: uuid4(),
    fhirServer: config.fhir,
    fhirAuthorization: {
      access_token: config.fhirToken,
      token_type: "Bearer",
      expires_in: 300,
      scope: "patient/*.read",
      subject: service.id,
    },
    context,
    prefetch: await prefetch(service.prefetch || {}, context),
  };
  if (config.evaluationTime) request.extension = { "org.mscc-cds.evaluation-time": config.evaluationTime };
  const response = await cds("POST", `/cds-services/${service.id}`, request);
  const cards = document.getElementById("cards");
  for (const card of response.cards) cards.append(renderCard(service, card));
  setStatus("status", "done", `${response.cards.length} card(s)`);
}

run().catch((error) => setStatus("status", "error", String(error)));
