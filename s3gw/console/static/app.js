// The Stowage console: plain JavaScript, no framework, no build step.
//
// Every action is an S3 or IAM request sent to this daemon's console API (api/s3/..., api/iam),
// which performs it as the logged-in user through the same authorization as any signed request.
// Names and values from the server are only ever put into the page as text (textContent, never
// innerHTML), so an object named <script> is shown, not run; the Content-Security-Policy forbids
// inline script besides.
"use strict";

const TOKEN_KEY = "stowage-console-token";
const PART_SIZE = 8 * 1024 * 1024;
const IAM_VERSION = "2010-05-08";
let token = sessionStorage.getItem(TOKEN_KEY);
let me = null;
let refreshTimer = null;

// --- small helpers ---------------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "text") el.textContent = v;
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const kid of kids.flat()) {
    if (kid === undefined || kid === null || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

function flash(message, kind = "error") {
  const f = $("flash");
  f.textContent = message;
  f.className = kind;
  f.hidden = false;
  if (kind === "ok") setTimeout(() => { if (f.textContent === message) f.hidden = true; }, 4000);
}

function clearFlash() { $("flash").hidden = true; }

function size(n) {
  if (n === null || n === undefined || n === "") return "";
  n = Number(n);
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + " " + units[i];
}

function encodeKey(key) { return key.split("/").map(encodeURIComponent).join("/"); }

function xmlDoc(text) { return new DOMParser().parseFromString(text, "application/xml"); }

function all(node, name) { return Array.from(node.getElementsByTagNameNS("*", name)); }

function first(node, name) {
  const found = node.getElementsByTagNameNS("*", name);
  return found.length ? found[0].textContent : "";
}

function esc(text) {  // for XML we send: the server parses it, the page never renders it
  return String(text).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(code ? `${code}: ${message}` : message);
    this.status = status;
    this.code = code;
  }
}

async function errorOf(status, text, type) {
  if (type && type.includes("json")) {
    try {
      const doc = JSON.parse(text);
      return new ApiError(status, doc.error, doc.message);
    } catch (e) { /* fall through */ }
  }
  if (text && text.trim().startsWith("<")) {
    const doc = xmlDoc(text);
    return new ApiError(status, first(doc, "Code"), first(doc, "Message") || "request failed");
  }
  return new ApiError(status, "", `HTTP ${status}`);
}

async function call(method, path, { body, headers, allow404 } = {}) {
  const resp = await fetch("api/" + path, {
    method, body, credentials: "same-origin",
    headers: Object.assign({ "X-Stowage-Console-Token": token || "" }, headers || {}),
  });
  if (resp.status === 401 && path !== "login") {
    showLogin("Your session ended; log in again.");
    throw new ApiError(401, "NotLoggedIn", "log in again");
  }
  if (!resp.ok) {
    if (allow404 && resp.status === 404) return null;
    throw await errorOf(resp.status, await resp.text(), resp.headers.get("Content-Type"));
  }
  return resp;
}

// CRC-32 (IEEE) of a settings document, sent as x-amz-checksum-crc32: AWS refuses lifecycle and
// object lock documents that carry no digest, and Web Crypto offers no MD5 (nor anything outside
// a secure context, as a console reached over plain HTTP on a LAN address is)
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32Base64(text) {
  let c = 0xFFFFFFFF;
  for (const b of new TextEncoder().encode(text)) c = CRC_TABLE[(c ^ b) & 0xFF] ^ (c >>> 8);
  c = (c ^ 0xFFFFFFFF) >>> 0;
  return btoa(String.fromCharCode(c >>> 24, (c >>> 16) & 0xFF, (c >>> 8) & 0xFF, c & 0xFF));
}

// A PUT of a subresource document carries its digest (a POST's x-amz-checksum-* would describe
// something else: CompleteMultipartUpload's names the whole object's)
const s3 = (method, path, opts = {}) => call(method, "s3/" + path,
  method === "PUT" && path.includes("?") && typeof opts.body === "string"
    ? Object.assign({}, opts, { headers: Object.assign({ "x-amz-checksum-crc32": crc32Base64(opts.body) }, opts.headers) })
    : opts);

async function s3xml(method, path, opts) {
  const resp = await s3(method, path, opts);
  return resp === null ? null : xmlDoc(await resp.text());
}

async function iam(action, params = {}) {
  const body = new URLSearchParams(Object.assign({ Action: action, Version: IAM_VERSION }, params));
  const resp = await call("POST", "iam", {
    body, headers: { "Content-Type": "application/x-www-form-urlencoded" },
  });
  return xmlDoc(await resp.text());
}

async function jsonCall(method, path, doc) {
  const resp = await call(method, path, doc === undefined ? {} : {
    body: JSON.stringify(doc), headers: { "Content-Type": "application/json" },
  });
  return resp.json();
}

function guarded(fn) {  // an event handler whose failure is shown, not lost
  return async (ev) => {
    if (ev && ev.preventDefault) ev.preventDefault();
    try { clearFlash(); await fn(ev); } catch (e) { if (!(e instanceof ApiError && e.status === 401)) flash(e.message); }
  };
}

// --- login -------------------------------------------------------------------------------------

function showLogin(message) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  me = null;
  $("login").hidden = false;
  $("page").hidden = true;
  $("nav").hidden = true;
  $("logout").hidden = true;
  $("who").textContent = "";
  if (message) flash(message);
}

function showApp() {
  $("login").hidden = true;
  $("page").hidden = false;
  $("nav").hidden = false;
  $("logout").hidden = false;
  $("who").textContent = `${me.user} (${me.arn || me.kind})`;
  if (!location.hash || location.hash === "#") location.hash = "#/buckets";
  else render();
}

async function login(ev) {
  ev.preventDefault();
  clearFlash();
  try {
    const resp = await call("POST", "login", {
      body: JSON.stringify({ access_key: $("login-access").value, secret_key: $("login-secret").value }),
      headers: { "Content-Type": "application/json" },
    });
    me = await resp.json();
    token = me.token;
    sessionStorage.setItem(TOKEN_KEY, token);
    $("login-secret").value = "";
    showApp();
  } catch (e) {
    flash(e.message);
  }
}

async function logout() {
  try { await call("POST", "logout"); } catch (e) { /* gone already */ }
  showLogin();
}

// --- routing -----------------------------------------------------------------------------------

function page(title, ...content) {
  const p = $("page");
  p.replaceChildren(h("h1", { text: title }), ...content);
  return p;
}

// Renders run one after another: a page still loading when the address changes (a slow listing,
// a reload's first render) would otherwise finish last and cover the page asked for after it.
let renderChain = Promise.resolve();
function render() {
  renderChain = renderChain.then(renderNow, renderNow);
  return renderChain;
}

async function renderNow() {
  if (!me) return;
  if (refreshTimer) { clearInterval(refreshTimer); refreshTimer = null; }
  const parts = location.hash.replace(/^#\/?/, "").split("/");
  const what = parts[0];
  const rest = parts.slice(1).map(decodeURIComponent);
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.id === "nav-" + (what === "browse" || what === "object" || what === "bucket" ? "buckets" : what));
  }
  try {
    if (what === "buckets") await pageBuckets();
    else if (what === "bucket") await pageBucket(rest[0]);
    else if (what === "browse") await pageBrowse(rest[0], rest.slice(1).join("/"));
    else if (what === "object") await pageObject(rest[0], rest.slice(1).join("/"));
    else if (what === "iam") await pageIam();
    else if (what === "disks") await pageDisks();
    else if (what === "status") await pageStatus();
    else if (what === "durability") await pageDurability();
    else page("Not found", h("p", { text: "No such page." }));
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      page("Error", h("p", { class: "error", id: "page-error", text: e.message }));
      flash(e.message);
    }
  }
}

const link = (hash, text, attrs = {}) => h("a", Object.assign({ href: hash }, attrs), text);
const browseHash = (bucket, prefix) => "#/browse/" + [bucket, ...prefix.split("/")].map(encodeURIComponent).join("/");
const objectHash = (bucket, key) => "#/object/" + [bucket, ...key.split("/")].map(encodeURIComponent).join("/");

// --- buckets -----------------------------------------------------------------------------------

async function pageBuckets() {
  const doc = await s3xml("GET", "");
  const rows = all(doc, "Bucket").map((b) => {
    const name = first(b, "Name");
    return h("tr", {},
      h("td", {}, link(browseHash(name, ""), name, { class: "bucket-link" })),
      h("td", { text: first(b, "CreationDate") }),
      h("td", {},
        link("#/bucket/" + encodeURIComponent(name), "Settings"), " ",
        h("button", { class: "danger", onclick: guarded(async () => {
          if (!confirm(`Delete bucket ${name}? It must be empty.`)) return;
          await s3("DELETE", encodeURIComponent(name));
          flash(`Bucket ${name} deleted.`, "ok");
          await render();
        }) }, "Delete")));
  });
  const nameInput = h("input", { id: "new-bucket", placeholder: "new-bucket-name", required: true });
  const lockBox = h("input", { type: "checkbox", id: "new-bucket-lock" });
  const form = h("form", { class: "inline", id: "create-bucket", onsubmit: guarded(async () => {
    const headers = lockBox.checked ? { "x-amz-bucket-object-lock-enabled": "true" } : {};
    await s3("PUT", encodeURIComponent(nameInput.value.trim()), { headers });
    flash(`Bucket ${nameInput.value.trim()} created.`, "ok");
    await render();
  }) }, nameInput, h("label", {}, lockBox, "object lock"), h("button", { type: "submit" }, "Create bucket"));
  page("Buckets", form,
    h("table", { id: "buckets" }, h("tr", {}, h("th", { text: "Name" }), h("th", { text: "Created" }), h("th")), rows),
    rows.length ? null : h("p", { class: "muted", text: "No buckets you may see yet." }));
}

async function pageBucket(bucket) {
  const b = encodeURIComponent(bucket);
  const versioning = await s3xml("GET", b + "?versioning");
  const status = first(versioning, "Status") || "Never enabled";
  const lock = await s3xml("GET", b + "?object-lock", { allow404: true });
  const enc = await s3xml("GET", b + "?encryption", { allow404: true });
  const cors = await s3xml("GET", b + "?cors", { allow404: true });

  const vSelect = h("select", { id: "versioning" }, h("option", { value: "Enabled" }, "Enabled"),
    h("option", { value: "Suspended" }, "Suspended"));
  vSelect.value = status === "Suspended" ? "Suspended" : "Enabled";
  const vForm = h("form", { class: "inline", onsubmit: guarded(async () => {
    const body = `<VersioningConfiguration><Status>${vSelect.value}</Status></VersioningConfiguration>`;
    await s3("PUT", b + "?versioning", { body, headers: { "Content-Type": "application/xml" } });
    flash("Versioning updated.", "ok");
    await render();
  }) }, h("span", { id: "versioning-status", text: "Versioning: " + status }), vSelect, h("button", {}, "Set"));

  let lockPanel;
  if (lock) {
    const mode = first(lock, "Mode");
    const days = first(lock, "Days");
    const years = first(lock, "Years");
    const modeSel = h("select", {}, h("option", { value: "" }, "no default retention"),
      h("option", { value: "GOVERNANCE" }, "GOVERNANCE"), h("option", { value: "COMPLIANCE" }, "COMPLIANCE"));
    modeSel.value = mode;
    const daysIn = h("input", { type: "number", min: "1", value: days || "", placeholder: "days" });
    lockPanel = h("div", {}, h("p", { id: "lock-status", text: "Object lock: enabled" +
        (mode ? `, default ${mode} for ${days ? days + " days" : years + " years"}` : "") }),
      h("form", { class: "inline", onsubmit: guarded(async () => {
        const rule = modeSel.value ? `<Rule><DefaultRetention><Mode>${modeSel.value}</Mode><Days>${Number(daysIn.value) || 1}</Days></DefaultRetention></Rule>` : "";
        const body = `<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>${rule}</ObjectLockConfiguration>`;
        await s3("PUT", b + "?object-lock", { body, headers: { "Content-Type": "application/xml" } });
        flash("Object lock settings saved.", "ok");
        await render();
      }) }, modeSel, daysIn, h("button", {}, "Save default retention")));
  } else {
    lockPanel = h("div", {}, h("p", { id: "lock-status", text: "Object lock: not enabled (needs versioning; cannot be turned off again)" }),
      h("button", { class: "secondary", onclick: guarded(async () => {
        if (!confirm("Enable object lock on " + bucket + "? This cannot be undone.")) return;
        const body = "<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>";
        await s3("PUT", b + "?object-lock", { body, headers: { "Content-Type": "application/xml" } });
        await render();
      }) }, "Enable object lock"));
  }

  const algorithm = enc ? first(enc, "SSEAlgorithm") : "";
  const encSel = h("select", { id: "encryption" }, h("option", { value: "AES256" }, "SSE-S3 (AES256)"),
    h("option", { value: "" }, "configured default"));
  encSel.value = algorithm === "AES256" ? "AES256" : "";
  const encForm = h("form", { class: "inline", onsubmit: guarded(async () => {
    if (encSel.value) {
      const body = `<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>${encSel.value}</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`;
      await s3("PUT", b + "?encryption", { body, headers: { "Content-Type": "application/xml" } });
    } else {
      await s3("DELETE", b + "?encryption");
    }
    flash("Default encryption updated.", "ok");
    await render();
  }) }, h("span", { text: "Default encryption: " + (algorithm || "none") }), encSel, h("button", {}, "Set"));

  const corsText = h("textarea", { id: "cors-xml", spellcheck: false });
  corsText.value = cors ? new XMLSerializer().serializeToString(cors) : "";
  const corsForm = h("form", { onsubmit: guarded(async () => {
    if (corsText.value.trim()) {
      await s3("PUT", b + "?cors", { body: corsText.value, headers: { "Content-Type": "application/xml" } });
    } else {
      await s3("DELETE", b + "?cors");
    }
    flash("CORS rules saved.", "ok");
    await render();
  }) }, corsText, h("button", {}, "Save CORS rules (empty: delete)"));

  // a setting the user may not read shows the refusal in its own panel; the others still show
  const readable = async (sub) => {
    try { return await s3xml("GET", `${b}?${sub}`, { allow404: true }); } catch (e) {
      if (e instanceof ApiError && e.status === 403) return e;
      throw e;
    }
  };
  const lifecycle = await readable("lifecycle");
  const replication = await readable("replication");
  const notification = await readable("notification");

  page("Bucket " + bucket,
    h("p", {}, link(browseHash(bucket, ""), "Browse objects")),
    h("div", { class: "panel" }, h("h2", { text: "Versioning" }), vForm),
    h("div", { class: "panel" }, h("h2", { text: "Object lock" }), lockPanel),
    h("div", { class: "panel" }, h("h2", { text: "Encryption" }), encForm),
    h("div", { class: "panel" }, h("h2", { text: "CORS" }), corsForm),
    xmlSetting(b, "lifecycle", "Lifecycle", lifecycle, lifecycleRows, LIFECYCLE_EXAMPLE, true),
    xmlSetting(b, "replication", "Replication", replication, replicationRows, REPLICATION_EXAMPLE, true),
    xmlSetting(b, "notification", "Notifications", notification, notificationRows, NOTIFICATION_EXAMPLE, false));
}

// Lifecycle, replication and notification settings: a summary of the rules and the XML document
// itself to edit (what PutBucketLifecycleConfiguration etc. take; the server validates it).
const LIFECYCLE_EXAMPLE = "<LifecycleConfiguration><Rule><ID>expire-logs</ID><Filter><Prefix>logs/</Prefix></Filter>" +
  "<Status>Enabled</Status><Expiration><Days>30</Days></Expiration></Rule></LifecycleConfiguration>";
const REPLICATION_EXAMPLE = "<ReplicationConfiguration><Role>arn:aws:iam::000000000000:role/replication</Role><Rule>" +
  "<ID>all</ID><Status>Enabled</Status><Priority>1</Priority><Filter/><DeleteMarkerReplication><Status>Disabled</Status>" +
  "</DeleteMarkerReplication><Destination><Bucket>arn:stowage:s3::TARGET:BUCKET</Bucket></Destination></Rule></ReplicationConfiguration>";
const NOTIFICATION_EXAMPLE = "<NotificationConfiguration><QueueConfiguration><Id>new-objects</Id>" +
  "<Queue>arn:stowage:sqs::TARGET:webhook</Queue><Event>s3:ObjectCreated:*</Event></QueueConfiguration></NotificationConfiguration>";

function ruleFilter(r) {
  const prefix = all(r, "Prefix").map((p) => p.textContent).filter(Boolean);
  const tags = all(r, "Tag").map((t) => `${first(t, "Key")}=${first(t, "Value")}`);
  return [...prefix.map((p) => "prefix " + p), ...tags.map((t) => "tag " + t)].join(", ") || "every object";
}

function lifecycleRows(doc) {
  return all(doc, "Rule").map((r) => {
    const actions = [];
    for (const e of all(r, "Expiration")) actions.push("expire after " + (first(e, "Days") ? first(e, "Days") + " days" : first(e, "Date") || "delete markers"));
    for (const t of all(r, "Transition")) actions.push(`to ${first(t, "StorageClass")} after ${first(t, "Days") || first(t, "Date")} days`);
    for (const e of all(r, "NoncurrentVersionExpiration")) actions.push(`noncurrent versions expire after ${first(e, "NoncurrentDays")} days`);
    for (const e of all(r, "AbortIncompleteMultipartUpload")) actions.push(`abort uploads after ${first(e, "DaysAfterInitiation")} days`);
    return [first(r, "ID"), first(r, "Status"), ruleFilter(r), actions.join("; ")];
  });
}

function replicationRows(doc) {
  return all(doc, "Rule").map((r) => [first(r, "ID"), first(r, "Status"), ruleFilter(r),
    "to " + first(r.getElementsByTagNameNS("*", "Destination")[0] || r, "Bucket")]);
}

function notificationRows(doc) {
  const rows = [];
  for (const [kind, target] of [["QueueConfiguration", "Queue"], ["TopicConfiguration", "Topic"], ["CloudFunctionConfiguration", "CloudFunction"], ["LambdaFunctionConfiguration", "LambdaFunction"]]) {
    for (const c of all(doc, kind)) {
      rows.push([first(c, "Id"), all(c, "Event").map((e) => e.textContent).join(", "), ruleFilter(c), "to " + first(c, target)]);
    }
  }
  return rows;
}

function xmlSetting(b, sub, title, doc, summarize, example, deletable) {
  if (doc instanceof ApiError) {
    return h("div", { class: "panel", id: sub + "-panel" }, h("h2", { text: title }), h("p", { class: "error", id: sub + "-rules", text: doc.message }));
  }
  const rows = doc ? summarize(doc) : [];
  const area = h("textarea", { id: sub + "-xml", spellcheck: false });
  area.value = doc && rows.length ? new XMLSerializer().serializeToString(doc) : "";
  area.placeholder = example;
  const save = guarded(async () => {
    const text = area.value.trim();
    if (text) {
      await s3("PUT", `${b}?${sub}`, { body: text, headers: { "Content-Type": "application/xml" } });
    } else if (deletable) {
      await s3("DELETE", `${b}?${sub}`);
    } else {
      await s3("PUT", `${b}?${sub}`, { body: `<${example.slice(1, example.indexOf(">"))}/>`, headers: { "Content-Type": "application/xml" } });
    }
    flash(title + " settings saved.", "ok");
    await render();
  });
  return h("div", { class: "panel", id: sub + "-panel" }, h("h2", { text: title }),
    rows.length
      ? h("table", { id: sub + "-rules" }, h("tr", {}, ["Id", sub === "notification" ? "Events" : "Status", "Applies to", "Does"].map((t) => h("th", { text: t }))),
        rows.map((r) => h("tr", {}, r.map((c) => h("td", { text: c })))))
      : h("p", { class: "muted", id: sub + "-rules", text: "None set." }),
    h("details", {}, h("summary", { text: "Edit the XML document (empty: remove every rule)" }),
      h("form", { onsubmit: save }, area, h("p", {},
        h("button", { type: "button", class: "secondary", onclick: () => { area.value = example; } }, "Start from an example"), " ",
        h("button", { id: sub + "-save" }, "Save " + title.toLowerCase())))));
}

// --- the object browser --------------------------------------------------------------------------

function crumbs(bucket, prefix) {
  const out = [link("#/buckets", "Buckets"), " / ", link(browseHash(bucket, ""), bucket)];
  let acc = "";
  for (const part of prefix.split("/").filter(Boolean)) {
    acc += part + "/";
    out.push(" / ", link(browseHash(bucket, acc), part));
  }
  return h("p", { class: "crumbs" }, out);
}

async function download(bucket, key, versionId) {
  const { url } = await jsonCall("POST", "presign", { bucket, key, version_id: versionId || undefined, download: true, expires: 300 });
  const a = h("a", { href: url, download: key.split("/").pop(), rel: "noopener" });
  document.body.append(a);
  a.click();
  a.remove();
}

async function pageBrowse(bucket, prefix) {
  const b = encodeURIComponent(bucket);
  const heading = h("tr", {}, h("th", { text: "Name" }), h("th", { text: "Size" }), h("th", { text: "Last modified" }), h("th"));
  const list = h("table", { id: "objects" }, heading);
  let next = "";
  const more = h("button", { class: "secondary", hidden: true }, "More");

  async function loadPage() {
    const q = new URLSearchParams({ "list-type": "2", delimiter: "/", prefix, "max-keys": "500" });
    if (next) q.set("continuation-token", next);
    const doc = await s3xml("GET", b + "?" + q.toString());
    for (const p of all(doc, "CommonPrefixes")) {
      const full = first(p, "Prefix");
      list.append(h("tr", {}, h("td", {}, link(browseHash(bucket, full), full.slice(prefix.length), { class: "folder" })),
        h("td"), h("td"), h("td")));
    }
    for (const c of all(doc, "Contents")) {
      const key = first(c, "Key");
      if (key === prefix) continue;
      list.append(h("tr", { class: "object-row" },
        h("td", {}, link(objectHash(bucket, key), key.slice(prefix.length), { class: "object-link" })),
        h("td", { class: "num", text: size(first(c, "Size")) }),
        h("td", { text: first(c, "LastModified") }),
        h("td", {},
          h("button", { class: "secondary", onclick: guarded(() => download(bucket, key)) }, "Download"), " ",
          h("button", { class: "danger", onclick: guarded(async () => {
            if (!confirm("Delete " + key + "?")) return;
            await s3("DELETE", b + "/" + encodeKey(key));
            await render();
          }) }, "Delete"))));
    }
    next = first(doc, "NextContinuationToken");
    more.hidden = first(doc, "IsTruncated") !== "true";
  }
  more.addEventListener("click", guarded(loadPage));

  const fileInput = h("input", { type: "file", id: "upload-file", multiple: true });
  const bar = h("progress", { id: "upload-progress", max: 1, value: 0 });
  const barText = h("span", { id: "upload-status", class: "muted" });
  const form = h("form", { class: "inline", id: "upload-form", onsubmit: guarded(async () => {
    for (const file of fileInput.files) {
      await uploadFile(bucket, prefix + file.name, file, (done) => {
        bar.value = file.size ? done / file.size : 1;
        barText.textContent = `${file.name}: ${size(done)} of ${size(file.size)}`;
      });
      barText.textContent = `${file.name}: uploaded`;
    }
    flash("Upload complete.", "ok");
    list.replaceChildren(heading);  // the listing again, the progress left as it ended
    next = "";
    await loadPage();
  }) }, fileInput, h("button", { type: "submit", id: "upload-submit" }, "Upload"), bar, barText);

  page("Browse " + bucket, crumbs(bucket, prefix),
    h("p", {}, link("#/bucket/" + b, "Bucket settings")), form, list, more);
  await loadPage();
}

function xhr(method, url, body, headers, onProgress) {
  return new Promise((resolve, reject) => {
    const r = new XMLHttpRequest();
    r.open(method, "api/" + url);
    r.setRequestHeader("X-Stowage-Console-Token", token || "");
    for (const [k, v] of Object.entries(headers || {})) r.setRequestHeader(k, v);
    r.upload.onprogress = (ev) => { if (onProgress) onProgress(ev.loaded); };
    r.onload = async () => {
      if (r.status >= 200 && r.status < 300) resolve(r);
      else reject(await errorOf(r.status, r.responseText, r.getResponseHeader("Content-Type")));
    };
    r.onerror = () => reject(new ApiError(0, "NetworkError", "the upload was interrupted"));
    r.send(body);
  });
}

// Large files go up as a multipart upload of 8 MiB parts. Its upload id is kept in
// localStorage, so choosing the same file again after a page reload goes on where it stopped.
async function uploadFile(bucket, key, file, onProgress) {
  const path = encodeURIComponent(bucket) + "/" + encodeKey(key);
  const type = { "Content-Type": file.type || "application/octet-stream" };
  if (file.size <= PART_SIZE) {
    await xhr("PUT", "s3/" + path, file, type, onProgress);
    onProgress(file.size);
    return;
  }
  const resumeKey = `stowage-upload:${bucket}/${key}:${file.name}:${file.size}:${file.lastModified}`;
  let uploadId = localStorage.getItem(resumeKey);
  const done = new Map();
  if (uploadId) {
    try {
      const parts = await s3xml("GET", `${path}?uploadId=${encodeURIComponent(uploadId)}&max-parts=10000`);
      for (const p of all(parts, "Part")) done.set(Number(first(p, "PartNumber")), { etag: first(p, "ETag"), size: Number(first(p, "Size")) });
    } catch (e) {
      uploadId = null;
      done.clear();
    }
  }
  if (!uploadId) {
    const started = await s3xml("POST", path + "?uploads", { headers: type });
    uploadId = first(started, "UploadId");
    localStorage.setItem(resumeKey, uploadId);
  }
  const count = Math.ceil(file.size / PART_SIZE);
  let sent = 0;
  const etags = [];
  for (let n = 1; n <= count; n++) {
    const blob = file.slice((n - 1) * PART_SIZE, Math.min(n * PART_SIZE, file.size));
    const have = done.get(n);
    if (have && have.size === blob.size) {
      etags.push(have.etag);
    } else {
      const r = await xhr("PUT", `s3/${path}?partNumber=${n}&uploadId=${encodeURIComponent(uploadId)}`, blob, {},
        (loaded) => onProgress(sent + loaded));
      etags.push(r.getResponseHeader("ETag"));
    }
    sent += blob.size;
    onProgress(sent);
  }
  const body = "<CompleteMultipartUpload>" +
    etags.map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${esc(e)}</ETag></Part>`).join("") +
    "</CompleteMultipartUpload>";
  await s3("POST", `${path}?uploadId=${encodeURIComponent(uploadId)}`, { body, headers: { "Content-Type": "application/xml" } });
  localStorage.removeItem(resumeKey);
}

async function pageObject(bucket, key) {
  const path = encodeURIComponent(bucket) + "/" + encodeKey(key);
  const head = await s3("HEAD", path);
  const meta = h("table", { id: "object-meta" });
  for (const name of ["Content-Type", "Content-Length", "ETag", "Last-Modified", "x-amz-version-id",
    "x-amz-server-side-encryption", "x-amz-storage-class", "x-amz-object-lock-mode", "x-amz-object-lock-retain-until-date"]) {
    const v = head.headers.get(name);
    if (v !== null) meta.append(h("tr", {}, h("th", { text: name }), h("td", { text: name === "Content-Length" ? `${v} (${size(v)})` : v })));
  }
  for (const [name, v] of head.headers.entries()) {
    if (name.startsWith("x-amz-meta-")) meta.append(h("tr", {}, h("th", { text: name }), h("td", { text: v })));
  }

  const tagsDoc = await s3xml("GET", path + "?tagging");
  const tagRows = h("div", { id: "tags" });
  const addTagRow = (k = "", v = "") => tagRows.append(h("div", { class: "inline tag-row" },
    h("input", { class: "tag-key", value: k, placeholder: "key" }), h("input", { class: "tag-value", value: v, placeholder: "value" })));
  for (const t of all(tagsDoc, "Tag")) addTagRow(first(t, "Key"), first(t, "Value"));
  addTagRow();
  const tagForm = h("form", { onsubmit: guarded(async () => {
    const tags = Array.from(tagRows.querySelectorAll(".tag-row")).map((row) => [row.querySelector(".tag-key").value, row.querySelector(".tag-value").value])
      .filter(([k]) => k);
    const body = "<Tagging><TagSet>" + tags.map(([k, v]) => `<Tag><Key>${esc(k)}</Key><Value>${esc(v)}</Value></Tag>`).join("") + "</TagSet></Tagging>";
    await s3("PUT", path + "?tagging", { body, headers: { "Content-Type": "application/xml" } });
    flash("Tags saved.", "ok");
    await render();
  }) }, tagRows, h("button", { type: "button", class: "secondary", onclick: () => addTagRow() }, "Add tag"), " ", h("button", {}, "Save tags"));

  const versions = h("table", { id: "versions" }, h("tr", {}, h("th", { text: "Version" }), h("th", { text: "Size" }),
    h("th", { text: "Last modified" }), h("th")));
  const vdoc = await s3xml("GET", encodeURIComponent(bucket) + "?versions&prefix=" + encodeURIComponent(key), { allow404: true });
  if (vdoc) {
    for (const v of [...all(vdoc, "Version"), ...all(vdoc, "DeleteMarker")]) {
      if (first(v, "Key") !== key) continue;
      const vid = first(v, "VersionId");
      const marker = v.localName === "DeleteMarker";
      versions.append(h("tr", {},
        h("td", { text: vid + (first(v, "IsLatest") === "true" ? " (latest)" : "") + (marker ? " (delete marker)" : "") }),
        h("td", { class: "num", text: marker ? "" : size(first(v, "Size")) }),
        h("td", { text: first(v, "LastModified") }),
        h("td", {}, marker ? null : h("button", { class: "secondary", onclick: guarded(() => download(bucket, key, vid)) }, "Download"), " ",
          h("button", { class: "danger", onclick: guarded(async () => {
            if (!confirm(`Delete version ${vid} for good?`)) return;
            await s3("DELETE", `${path}?versionId=${encodeURIComponent(vid)}`);
            await render();
          }) }, "Delete version"))));
    }
  }

  const expiry = h("select", { id: "share-expiry" }, h("option", { value: "3600" }, "1 hour"),
    h("option", { value: "86400" }, "1 day"), h("option", { value: "604800" }, "7 days"));
  const shareOut = h("input", { id: "share-url", class: "wide", readOnly: true });
  const share = h("form", { class: "inline", onsubmit: guarded(async () => {
    const { url } = await jsonCall("POST", "presign", { bucket, key, expires: Number(expiry.value) });
    shareOut.value = url;
    shareOut.select();
  }) }, "Link valid for", expiry, h("button", { id: "share-make" }, "Make share link"));

  page(key.split("/").pop() || key, crumbs(bucket, key.split("/").slice(0, -1).join("/") + (key.includes("/") ? "/" : "")),
    h("p", {}, h("button", { id: "object-download", onclick: guarded(() => download(bucket, key)) }, "Download"), " ",
      h("button", { class: "danger", onclick: guarded(async () => {
        if (!confirm("Delete " + key + "?")) return;
        await s3("DELETE", path);
        location.hash = browseHash(bucket, key.includes("/") ? key.slice(0, key.lastIndexOf("/") + 1) : "");
      }) }, "Delete")),
    h("div", { class: "panel" }, h("h2", { text: "Metadata" }), meta),
    h("div", { class: "panel" }, h("h2", { text: "Tags" }), tagForm),
    h("div", { class: "panel" }, h("h2", { text: "Share" }), share, shareOut),
    h("div", { class: "panel" }, h("h2", { text: "Versions" }), versions));
}

// --- users, groups, keys and policies -------------------------------------------------------------

function validatePolicy(text) {
  let doc;
  try { doc = JSON.parse(text); } catch (e) { return "not JSON: " + e.message; }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) return "a policy is a JSON object";
  if (doc.Version !== "2012-10-17" && doc.Version !== "2008-10-17") return 'Version must be "2012-10-17"';
  const statements = Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
  if (!doc.Statement || !statements.length) return "Statement is missing";
  for (const [i, st] of statements.entries()) {
    if (typeof st !== "object" || st === null) return `Statement ${i + 1} is not an object`;
    if (st.Effect !== "Allow" && st.Effect !== "Deny") return `Statement ${i + 1}: Effect must be Allow or Deny`;
    if (!st.Action && !st.NotAction) return `Statement ${i + 1}: Action is missing`;
    if (!st.Resource && !st.NotResource) return `Statement ${i + 1}: Resource is missing`;
  }
  return "";
}

function policyEditor(id, initial) {
  const area = h("textarea", { id, spellcheck: false });
  area.value = initial;
  const status = h("span", { id: id + "-status" });
  const check = () => {
    const problem = validatePolicy(area.value);
    status.textContent = problem ? "✗ " + problem : "✓ valid policy";
    status.className = problem ? "json-bad" : "json-ok";
    return !problem;
  };
  area.addEventListener("input", check);
  check();
  return { area, status, check };
}

async function pageIam() {
  const users = all(await iam("ListUsers"), "member").map((m) => ({ name: first(m, "UserName"), created: first(m, "CreateDate") }));
  const groups = all(await iam("ListGroups"), "member").map((m) => first(m, "GroupName"));
  const policies = all(await iam("ListPolicies"), "member").map((m) => ({ name: first(m, "PolicyName"), arn: first(m, "Arn") }));

  const detail = h("div", { id: "user-detail" });
  async function showUser(name) {
    const keys = all(await iam("ListAccessKeys", { UserName: name }), "member");
    const attached = all(await iam("ListAttachedUserPolicies", { UserName: name }), "member");
    const inGroups = all(await iam("ListGroupsForUser", { UserName: name }), "member").map((m) => first(m, "GroupName"));
    const keyTable = h("table", { id: "keys" }, h("tr", {}, h("th", { text: "Access key" }), h("th", { text: "Status" }), h("th")),
      keys.map((k) => {
        const id = first(k, "AccessKeyId");
        const st = first(k, "Status");
        return h("tr", {}, h("td", { text: id }), h("td", { text: st }), h("td", {},
          h("button", { class: "secondary", onclick: guarded(async () => {
            await iam("UpdateAccessKey", { UserName: name, AccessKeyId: id, Status: st === "Active" ? "Inactive" : "Active" });
            await showUser(name);
          }) }, st === "Active" ? "Deactivate" : "Activate"), " ",
          h("button", { class: "danger", onclick: guarded(async () => {
            if (!confirm("Delete key " + id + "?")) return;
            await iam("DeleteAccessKey", { UserName: name, AccessKeyId: id });
            await showUser(name);
          }) }, "Delete")));
      }));
    const newKey = h("p", { id: "new-key" });
    const policySel = h("select", { id: "attach-policy" }, policies.map((p) => h("option", { value: p.arn }, p.name)));
    const groupSel = h("select", { id: "join-group" }, groups.map((g) => h("option", { value: g }, g)));
    detail.replaceChildren(h("div", { class: "panel" }, h("h2", { text: "User " + name }),
      h("h2", { text: "Access keys" }), keyTable,
      h("button", { id: "create-key", onclick: guarded(async () => {
        const doc = await iam("CreateAccessKey", { UserName: name });
        await showUser(name);
        $("new-key").textContent = `New key ${first(doc, "AccessKeyId")} with secret ${first(doc, "SecretAccessKey")} (shown once: copy it now)`;
      }) }, "Create access key"), newKey,
      h("h2", { text: "Policies" }),
      h("ul", {}, attached.map((p) => h("li", {}, first(p, "PolicyName"), " ",
        h("button", { class: "secondary", onclick: guarded(async () => {
          await iam("DetachUserPolicy", { UserName: name, PolicyArn: first(p, "PolicyArn") });
          await showUser(name);
        }) }, "Detach")))),
      h("form", { class: "inline", onsubmit: guarded(async () => {
        await iam("AttachUserPolicy", { UserName: name, PolicyArn: policySel.value });
        await showUser(name);
      }) }, policySel, h("button", {}, "Attach policy")),
      h("h2", { text: "Groups" }), h("p", { text: inGroups.join(", ") || "none" }),
      h("form", { class: "inline", onsubmit: guarded(async () => {
        await iam("AddUserToGroup", { UserName: name, GroupName: groupSel.value });
        await showUser(name);
      }) }, groupSel, h("button", {}, "Add to group"))));
  }

  const userName = h("input", { id: "new-user", placeholder: "user name", required: true });
  const groupName = h("input", { id: "new-group", placeholder: "group name", required: true });
  const polName = h("input", { id: "new-policy-name", placeholder: "policy name", required: true });
  const editor = policyEditor("policy-json", JSON.stringify({
    Version: "2012-10-17",
    Statement: [{ Effect: "Allow", Action: ["s3:GetObject", "s3:ListBucket"], Resource: ["arn:aws:s3:::example", "arn:aws:s3:::example/*"] }],
  }, null, 2));
  const viewed = h("div", { id: "policy-view" });

  async function viewPolicy(p) {
    const got = await iam("GetPolicy", { PolicyArn: p.arn });
    const version = first(got, "DefaultVersionId");
    const doc = await iam("GetPolicyVersion", { PolicyArn: p.arn, VersionId: version });
    const ed = policyEditor("policy-edit", JSON.stringify(JSON.parse(decodeURIComponent(first(doc, "Document"))), null, 2));
    viewed.replaceChildren(h("div", { class: "panel" }, h("h2", { text: `Policy ${p.name} (${version})` }), ed.area, ed.status,
      h("p", {}, h("button", { onclick: guarded(async () => {
        if (!ed.check()) throw new Error("Fix the policy first: " + ed.status.textContent);
        await iam("CreatePolicyVersion", { PolicyArn: p.arn, PolicyDocument: ed.area.value, SetAsDefault: "true" });
        flash("New policy version saved.", "ok");
        await viewPolicy(p);
      }) }, "Save as new default version"))));
  }

  page("Users & policies",
    h("div", { class: "panel" }, h("h2", { text: "Users" }),
      h("form", { class: "inline", id: "create-user", onsubmit: guarded(async () => {
        await iam("CreateUser", { UserName: userName.value.trim() });
        flash("User created.", "ok");
        await render();
      }) }, userName, h("button", {}, "Create user")),
      h("table", { id: "users" }, h("tr", {}, h("th", { text: "User" }), h("th", { text: "Created" }), h("th")),
        users.map((u) => h("tr", {}, h("td", { text: u.name }), h("td", { text: u.created }), h("td", {},
          h("button", { class: "secondary", onclick: guarded(() => showUser(u.name)) }, "Keys & policies"), " ",
          h("button", { class: "danger", onclick: guarded(async () => {
            if (!confirm("Delete user " + u.name + "?")) return;
            await iam("DeleteUser", { UserName: u.name });
            await render();
          }) }, "Delete")))))),
    detail,
    h("div", { class: "panel" }, h("h2", { text: "Groups" }),
      h("form", { class: "inline", onsubmit: guarded(async () => {
        await iam("CreateGroup", { GroupName: groupName.value.trim() });
        await render();
      }) }, groupName, h("button", {}, "Create group")),
      h("ul", { id: "groups" }, groups.map((g) => h("li", { text: g })))),
    h("div", { class: "panel" }, h("h2", { text: "Policies" }),
      h("table", { id: "policies" }, policies.map((p) => h("tr", {}, h("td", { text: p.name }), h("td", { class: "muted", text: p.arn }),
        h("td", {}, h("button", { class: "secondary", onclick: guarded(() => viewPolicy(p)) }, "View / edit"))))),
      viewed,
      h("h2", { text: "New policy" }),
      h("form", { id: "create-policy", onsubmit: guarded(async () => {
        if (!editor.check()) throw new Error("Fix the policy first: " + editor.status.textContent);
        await iam("CreatePolicy", { PolicyName: polName.value.trim(), PolicyDocument: editor.area.value });
        flash("Policy created.", "ok");
        await render();
      }) }, h("p", {}, polName), editor.area, editor.status, h("p", {}, h("button", {}, "Create policy")))));
}

// --- disks ---------------------------------------------------------------------------------------

function usageBar(used, total) {
  const fill = h("span");
  fill.style.width = (total ? Math.round((100 * used) / total) : 0) + "%";
  return h("span", { class: "bar" }, fill);
}

function progressBar(done, total, id) {
  return h("progress", { id, max: total || 1, value: total ? done : 0 });
}

function serviceLine(name, p) {
  if (!p || !Object.keys(p).length) return h("li", { text: `${name}: nothing yet` });
  const total = p.total ?? p.segments_total ?? 0;
  const done = p.done ?? p.segments_done ?? 0;
  const parts = [`${name}: ${p.running ? "running" : "idle"}`];
  if (total) parts.push(`${done} of ${total} segments`);
  if (p.op) parts.push(`${p.op} of ${p.disk_id}${p.target ? " onto " + p.target : ""}, ${p.moved_shards} shards moved`);
  if (p.rebuilt_shards) parts.push(`${p.rebuilt_shards} shards rebuilt`);
  if (name === "scrub") {
    parts.push(`${p.segments || 0} segments and ${size(p.bytes_read || 0)} verified in the ${p.pass_started_ns ? "current" : "last"} pass`);
    if (p.found) parts.push(`${p.found} damaged, ${p.repaired} repaired, ${p.unrecoverable} unrecoverable`);
    if (p.last_complete_ns) parts.push("last complete " + new Date(p.last_complete_ns / 1e6).toISOString().replace(/\.\d+Z$/, "Z"));
  }
  if (p.last_error) parts.push("last error: " + p.last_error);
  return h("li", { id: "service-" + name }, parts.join(", "), " ", p.running && total ? progressBar(done, total) : null);
}

function smartCell(x) {
  if (!x.smart) return h("td", { class: "muted", title: "not a block device, or not read yet", text: "n/a" });
  const sm = x.smart;
  const details = [["model", sm.model], ["serial", sm.serial], ["temperature", sm.temperature_c !== null ? sm.temperature_c + " °C" : null],
    ["power-on hours", sm.power_on_hours], ["reallocated sectors", sm.reallocated_sectors], ["pending sectors", sm.pending_sectors],
    ["offline uncorrectable", sm.offline_uncorrectable], ["media errors", sm.media_errors], ["percentage used", sm.percentage_used],
    ["failing now", (sm.failing_now || []).join(", ")], ["why unavailable", sm.unavailable_reason]]
    .filter(([, v]) => v !== null && v !== undefined && v !== "");
  return h("td", {}, h("details", { class: "smart" }, h("summary", { text: sm.verdict }),
    h("table", {}, details.map(([k, v]) => h("tr", {}, h("th", { text: k }), h("td", { text: String(v) }))))));
}

async function diskAction(action, args, question) {
  if (question && !confirm(question)) return;
  const r = await jsonCall("POST", "disks/action", Object.assign({ action }, args));
  flash(r.done ? `${action}: done.` : `${action}: started; its progress shows below.`, "ok");
}

// Adding a disk is `stowage disks add`: the candidates are the devices that command would find,
// each with what its preflight refuses (blockers) or erases only with force (data). The device
// must be typed again to confirm, since every add formats it.
function candidateRow(x, pools, done) {
  const what = [x.kind, x.model, size(x.size_bytes)].filter(Boolean).join(" ");
  const status = x.blockers.length ? "cannot be used: " + x.blockers.join("; ")
    : x.data.length ? "holds data: " + x.data.join("; ") : "blank";
  const id = "cand-" + x.device.replace(/[^A-Za-z0-9]/g, "_");
  if (x.blockers.length) {
    return h("tr", { id }, h("td", { text: x.device }), h("td", { text: what }), h("td", { class: "state-failed", text: status }), h("td"));
  }
  const role = h("select", { class: "add-role" }, ["data", "meta"].map((r) => h("option", { value: r, selected: r === (x.suggested_role || "data") }, r)));
  const pool = h("select", { class: "add-pool" }, pools.map((p) => h("option", { value: p }, p)));
  const force = x.data.length ? h("input", { type: "checkbox", class: "add-force" }) : null;
  const confirmText = h("input", { type: "text", class: "add-confirm", placeholder: `type ${x.device} to format it`, autocomplete: "off" });
  const add = async () => {
    await diskAction("add", { device: x.device, role: role.value, pool: pool.value, force: force ? force.checked : false,
      confirm: confirmText.value });
    await done();
  };
  return h("tr", { id },
    h("td", { text: x.device }), h("td", { text: what }),
    h("td", { class: x.data.length ? "state-warning" : "state-ok", text: status + (x.suggestion_reason ? ` (suggested: ${x.suggested_role || "none"}, ${x.suggestion_reason})` : "") }),
    h("td", {}, "role ", role, " pool ", pool, " ", force ? h("label", {}, force, " erase its data") : null, " ", confirmText, " ",
      h("button", { class: "danger add-disk", onclick: guarded(add) }, "Format and add")));
}

async function showCandidates(body, done) {
  const c = await jsonCall("GET", "disks/candidates");
  const rows = c.devices.map((x) => candidateRow(x, c.pools, done));
  body.replaceChildren(
    c.error ? h("p", { class: "error", text: "Device discovery failed: " + c.error }) : "",
    rows.length ? h("table", { id: "disk-candidates" }, h("tr", {}, ["Device", "What", "Status", "Add"].map((t) => h("th", { text: t }))), rows)
      : h("p", { class: "muted", text: "No block device outside the appliance was found." }));
}

async function pageDisks() {
  const show = async () => {
    const d = await jsonCall("GET", "disks");
    const c = d.capacity;
    const ids = d.disks.map((x) => x.disk_id);
    const rows = d.disks.map((x) => {
      const others = ids.filter((i) => i !== x.disk_id);
      const target = h("select", { class: "replace-target" }, others.map((i) => h("option", { value: i }, i)));
      return h("tr", { id: "disk-" + x.disk_id },
        h("td", { text: x.disk_id }), h("td", { text: x.pool + " / " + x.role }),
        h("td", { class: "state-" + x.state, text: x.state + (x.reasons.length ? ": " + x.reasons.join("; ") : "") }),
        h("td", {}, usageBar(x.total_bytes - x.free_bytes, x.total_bytes), " ", size(x.total_bytes - x.free_bytes) + " of " + size(x.total_bytes)),
        h("td", { class: "num", text: x.shards === undefined ? "–" : String(x.shards) }),
        h("td", { class: "num", text: String(x.io_errors) }), h("td", { class: "num", text: String(x.checksum_failures) }),
        h("td", { class: "num", text: x.latency_p99_ms === null ? "–" : x.latency_p99_ms.toFixed(1) + " ms" }),
        smartCell(x),
        h("td", {}, x.drain ? h("span", {}, `${x.drain.op}: `, progressBar(x.drain.done, x.drain.total)) : null,
          h("button", { class: "danger", onclick: guarded(() => diskAction("drain", { disk: x.disk_id },
            `Drain ${x.disk_id}: move every shard off it, then release it?`)) }, "Drain"), " ",
          others.length ? h("span", { class: "inline" }, h("button", { class: "secondary", onclick: guarded(() => diskAction("replace",
            { disk: x.disk_id, new: target.value }, `Rebuild ${x.disk_id}'s shards onto ${target.value}, then release ${x.disk_id}?`)) }, "Replace with"), " ", target) : null),
        h("td", { class: "muted", text: x.path }));
    });
    const sv = d.services || {};
    page("Disks",
      h("div", { class: "panel", id: "capacity" },
        h("p", {}, "Usable capacity: ", usageBar(c.usable_total - c.usable_free, c.usable_total), " ",
          `${size(c.usable_total - c.usable_free)} used of ${size(c.usable_total)} (raw ${size(c.raw_total)})`),
        h("p", { id: "heal-backlog", text: d.heal_backlog ? `Healing: ${d.heal_backlog} segments queued for repair` : "Healing: nothing queued" })),
      h("div", { class: "panel", id: "services" }, h("h2", { text: "Heal, scrub, drain" }),
        h("ul", {}, serviceLine("heal", sv.heal), serviceLine("scrub", sv.scrub), serviceLine("drain", sv.drain)),
        h("p", {},
          h("button", { id: "disks-check", class: "secondary", onclick: guarded(() => diskAction("check", {})) }, "Check the disks now"), " ",
          h("button", { id: "disks-scrub", class: "secondary", onclick: guarded(() => diskAction("scrub", {})) }, "Scrub now"), " ",
          h("button", { id: "disks-heal", class: "secondary", onclick: guarded(() => diskAction("heal", {})) }, "Heal now"))),
      h("table", { id: "disks" }, h("tr", {}, ["Disk", "Pool / role", "Health", "Usage", "Shards", "I/O errors", "Checksum failures",
        "p99 latency", "SMART", "Actions", "Path"].map((t) => h("th", { text: t }))), rows),
      addPanel,
      h("p", { class: "muted", text: "A drained or replaced disk leaves the daemon; a disk added with \"Add a disk\" (or `stowage disks add`) is also unmounted and its boot-time mount removed, so it can be pulled." }));
  };
  const candidates = h("div", {}, h("p", { class: "muted", text: "Looking for devices…" }));
  const addPanel = h("details", { class: "panel", id: "disk-add" }, h("summary", { text: "Add a disk (formats a block device)" }), candidates);
  const look = guarded(() => showCandidates(candidates, async () => { addPanel.open = false; await show(); }));
  addPanel.addEventListener("toggle", () => { if (addPanel.open) look(); });  // closing must not clear the flash
  await show();
  refreshTimer = setInterval(() => { if (!document.querySelector("#disks details[open], #disk-add[open]")) show().catch((e) => flash(e.message)); }, 5000);
}

// --- status: charts, version ---------------------------------------------------------------------

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, ...kids) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "text") el.textContent = v;
    else el.setAttribute(k, v);
  }
  for (const kid of kids) el.append(kid);
  return el;
}

// A line chart of [time (s), value] points, drawn as SVG in the page (no library, nothing fetched).
function lineChart(id, title, points, format, top) {
  const W = 560, H = 180, L = 70, R = 10, T = 24, B = 26;
  const chart = svg("svg", { id, viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": title, class: "chart" });
  chart.append(svg("text", { x: L, y: 15, class: "chart-title", text: title }));
  if (points.length < 2) {
    chart.append(svg("text", { x: L, y: H / 2, class: "chart-empty", text: "collecting samples (one every 10 s)…" }));
    return chart;
  }
  const t0 = points[0][0], t1 = points[points.length - 1][0];
  const vmax = top || Math.max(...points.map((p) => p[1])) || 1;
  const x = (t) => L + ((t - t0) / ((t1 - t0) || 1)) * (W - L - R);
  const y = (v) => H - B - (v / vmax) * (H - T - B);
  chart.append(svg("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "chart-axis" }));
  chart.append(svg("line", { x1: L, y1: T, x2: L, y2: H - B, class: "chart-axis" }));
  chart.append(svg("text", { x: L - 4, y: T + 4, "text-anchor": "end", class: "chart-label", text: format(vmax) }));
  chart.append(svg("text", { x: L - 4, y: H - B, "text-anchor": "end", class: "chart-label", text: format(0) }));
  const minutes = Math.round((t1 - t0) / 60);
  chart.append(svg("text", { x: L, y: H - 6, class: "chart-label", text: minutes ? `${minutes} min ago` : `${Math.round(t1 - t0)} s ago` }));
  chart.append(svg("text", { x: W - R, y: H - 6, "text-anchor": "end", class: "chart-label", text: "now: " + format(points[points.length - 1][1]) }));
  chart.append(svg("polyline", { points: points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" "), class: "chart-line" }));
  return chart;
}

async function pageStatus() {
  const v = await jsonCall("GET", "version");
  const formats = h("table", { id: "formats" }, Object.entries(v.formats).map(([k, n]) => h("tr", {}, h("th", { text: k }), h("td", { text: "format " + n }))));
  const up = v.upgrade;
  const versionPanel = h("div", { class: "panel", id: "version" }, h("h2", { text: "Version" }),
    h("p", { id: "version-line", text: `Stowage ${v.version}` }),
    h("p", { id: "formats-status", class: v.current ? "json-ok" : "json-bad", text: v.current
      ? "On-disk formats: current" + (v.data_version ? ` (data directory last run by ${v.data_version})` : "")
      : "On-disk formats: NOT current; the next start migrates: " + v.pending.map((m) => m.name).join(", ") }),
    formats,
    up ? h("p", { id: "upgrade-state", text: up.committed ? `Last upgrade ${up.from_version || "unstamped"} → ${up.to_version}: committed`
      : `Upgrade ${up.from_version || "unstamped"} → ${up.to_version} is not committed: \`stowage upgrade --commit\` keeps it, \`stowage rollback\` returns to the previous version` }) : null);
  const charts = h("div", { class: "panel", id: "charts" }, h("h2", { text: "Capacity and requests" }));
  page("Status", versionPanel, charts);
  const draw = async () => {
    let hist;
    try { hist = await jsonCall("GET", "history"); } catch (e) {
      charts.replaceChildren(h("h2", { text: "Capacity and requests" }), h("p", { class: "error", id: "charts-error", text: e.message }));
      return;
    }
    const sm = hist.samples;
    const used = sm.map((p) => [p.time, p.usable_used]);
    const rate = [];
    for (let i = 1; i < sm.length; i++) {
      const dt = sm[i].time - sm[i - 1].time;
      if (dt > 0) rate.push([sm[i].time, Math.max(0, sm[i].requests - sm[i - 1].requests) / dt]);
    }
    const total = sm.length ? sm[sm.length - 1].usable_total : 0;
    charts.replaceChildren(h("h2", { text: "Capacity and requests" }),
      lineChart("capacity-chart", `Usable capacity used (of ${size(total)})`, used, size, total),
      lineChart("requests-chart", "S3 and IAM requests per second", rate, (n) => (n >= 10 ? n.toFixed(0) : n.toFixed(2)) + "/s"));
  };
  await draw();
  refreshTimer = setInterval(() => { draw().catch((e) => flash(e.message)); }, 10000);
}

// --- durability --------------------------------------------------------------------------------

function pct(p) { return p === null || p === undefined ? "–" : p === 0 ? "0" : p.toPrecision(3); }
function ninesText(n) { return n === null || n === undefined ? "∞ (no loss modelled)" : n.toFixed(1); }

async function pageDurability() {
  const e = await jsonCall("GET", "durability");
  const rows = e.pools.map((p) => h("tr", {},
    h("td", { text: p.pool }), h("td", { class: "num", text: `${p.disks} (${p.failed} failed)` }), h("td", { text: `${p.k}+${p.m}` }),
    h("td", { class: "num", text: (p.afr_mean * 100).toPrecision(2) + " %" }), h("td", { class: "num", text: p.rebuild_hours.toFixed(1) + " h" }),
    h("td", { class: "num", text: pct(p.annual_loss) }), h("td", { class: "num", text: ninesText(p.nines) }),
    h("td", { class: "num", text: `${pct(p.annual_loss_one_more_parity)} (${ninesText(p.nines_one_more_parity)} nines)` }),
    h("td", { class: "num", text: p.annual_loss_with_replication === null ? "no target" : `${pct(p.annual_loss_with_replication)} (${ninesText(p.nines_with_replication)} nines)` })));
  const wear = e.pools.flatMap((p) => p.disk_rates.filter((r) => r.reasons.length)
    .map((r) => h("li", { text: `${r.disk_id}: annual failure rate ${(r.afr * 100).toPrecision(2)} % (${r.reasons.join("; ")})` })));
  page("Durability estimate",
    h("div", { class: "panel", id: "durability" },
      h("p", { id: "durability-nines", class: "big", text: `${ninesText(e.nines)} nines: a ${pct(e.annual_loss)} chance of losing data in a year` }),
      h("p", { text: e.annual_loss_with_replication === null ? "No replication target is configured (durability.replication_sites = 0)."
        : `With the replication target: ${pct(e.annual_loss_with_replication)} (${ninesText(e.nines_with_replication)} nines).` }),
      h("p", { text: `With one more parity disk: ${pct(e.annual_loss_one_more_parity)} (${ninesText(e.nines_one_more_parity)} nines).` }),
      h("table", { id: "durability-pools" }, h("tr", {}, ["Pool", "Disks", "Geometry", "Mean AFR", "Rebuild", "P(loss)/year", "Nines",
        "One more parity", "With replication"].map((t) => h("th", { text: t }))), rows),
      wear.length ? h("ul", { id: "durability-wear" }, wear) : h("p", { class: "muted", text: "No disk shows wear: every disk has the base failure rate." })),
    h("div", { class: "panel" }, h("h2", { text: "How it is computed" }),
      h("p", { text: `Per pool of N disks coded k+m, with a per-disk failure rate λ = AFR / 8760 h (base AFR ${(e.base_afr * 100).toPrecision(2)} %, raised for SMART wear) and a rebuild time R (detection plus writing one disk's data at ${size(e.rebuild_bytes_per_sec)}/s, ${e.rebuild_source}):` }),
      h("pre", { text: "MTTDL = (1/R)^m / (λ^(m+1) · N · (N−1) · … · (N−m))   hours\nP(loss in a year) = 1 − exp(−8760 / MTTDL)\nnines = −log10 P" }),
      h("p", { class: "muted", text: "Assumptions and the wear mapping: docs/durability.md. `stowage durability --measure` measures the rebuild speed instead of using the configured one." })));
}

// --- start ---------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", async () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", render);
  if (token) {
    try {
      me = await (await call("GET", "session")).json();
      showApp();
      return;
    } catch (e) { /* log in again */ }
  }
  showLogin();
});
