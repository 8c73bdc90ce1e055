// Conformance scenario for the official @huggingface/hub client against a Hub
// (normally core/hub/hubemu, started by conformance_test.go).
//
//   HUB_ENDPOINT=http://127.0.0.1:PORT HUB_TOKEN=hf_... node scenario.mjs \
//     --repo alice/from-js --upload DIR [--fetch-repo alice/from-go --fetch a.txt --fetch b/c.bin]
//
// Steps: whoAmI; createRepo(--repo); uploadFiles (every file under DIR, one
// commit); listFiles (each uploaded name with its size); downloadFile of each
// uploaded file (bytes equal to the local file); createRepo(--repo) again,
// which must throw HubApiError with statusCode 409; then downloadFile of each
// --fetch path from --fetch-repo. On success it prints one JSON object on
// stdout (see `report` below) and exits 0; any mismatch or error goes to
// stderr as "scenario: FAIL: ..." with exit code 1. Progress goes to stderr.

import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join, relative, sep } from "node:path";
import { parseArgs } from "node:util";

import { createRepo, downloadFile, HubApiError, listFiles, uploadFiles, whoAmI } from "@huggingface/hub";

function fail(msg) {
  process.stderr.write(`scenario: FAIL: ${msg}\n`);
  process.exit(1);
}

function log(msg) {
  process.stderr.write(`scenario: ${msg}\n`);
}

// The package's exports hide package.json; read it next to this script.
async function libraryVersion() {
  const url = new URL("./node_modules/@huggingface/hub/package.json", import.meta.url);
  return JSON.parse(await readFile(url, "utf8")).version;
}

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

async function walk(dir) {
  const out = [];
  for (const ent of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, ent.name);
    if (ent.isDirectory()) out.push(...(await walk(p)));
    else if (ent.isFile()) out.push(p);
  }
  return out;
}

function describe(err) {
  if (err instanceof HubApiError) return `HubApiError ${err.statusCode} ${err.url}: ${err.message}`;
  return err?.stack ?? String(err);
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    const v = await fn();
    log(`${name} ok (${Date.now() - t0} ms)`);
    return v;
  } catch (err) {
    fail(`${name}: ${describe(err)}`);
  }
}

async function main() {
  const { values } = parseArgs({
    options: {
      repo: { type: "string" },
      upload: { type: "string" },
      "fetch-repo": { type: "string" },
      fetch: { type: "string", multiple: true, default: [] },
      endpoint: { type: "string" },
    },
    strict: true,
  });
  const hubUrl = (values.endpoint ?? process.env.HUB_ENDPOINT ?? "").replace(/\/+$/, "");
  const accessToken = process.env.HUB_TOKEN ?? process.env.HF_TOKEN;
  if (!hubUrl) fail("no endpoint: set HUB_ENDPOINT or --endpoint");
  if (!accessToken) fail("no token: set HUB_TOKEN");
  if (!values.repo || !values.upload) fail("--repo and --upload are required");
  if (values.fetch.length > 0 && !values["fetch-repo"]) fail("--fetch needs --fetch-repo");
  const repo = { type: "model", name: values.repo };
  const creds = { hubUrl, accessToken };

  const report = {
    library: `@huggingface/hub@${await libraryVersion()}`,
    node: process.version,
    user: null,
    repoUrl: null,
    commit: null,
    uploaded: {}, // path → {size, sha256}
    listed: {}, // path → size, every file listFiles returned
    secondCreate: null, // {class, statusCode, message}
    fetched: {}, // path → {size, sha256}
  };

  const me = await step("whoAmI", () => whoAmI(creds));
  if (!me?.name) fail(`whoAmI: no name in ${JSON.stringify(me)}`);
  report.user = me.name;

  const created = await step("createRepo", () => createRepo({ ...creds, repo }));
  report.repoUrl = created?.repoUrl ?? null;

  // Local files, read once: the bytes to compare against after the round trip.
  const root = values.upload;
  const local = new Map();
  for (const abs of (await walk(root)).sort()) {
    const p = relative(root, abs).split(sep).join("/");
    local.set(p, await readFile(abs));
  }
  if (local.size === 0) fail(`nothing to upload under ${root}`);
  for (const [p, buf] of local) report.uploaded[p] = { size: buf.length, sha256: sha256(buf) };

  const files = [...local].map(([path, buf]) => ({ path, content: new Blob([buf]) }));
  const out = await step(`uploadFiles (${files.length} files)`, () =>
    uploadFiles({ ...creds, repo, files, commitTitle: "conformance: upload from @huggingface/hub" }),
  );
  report.commit = out?.commit?.oid ?? null;
  if (!report.commit) fail(`uploadFiles: no commit oid in ${JSON.stringify(out)}`);

  await step("listFiles", async () => {
    for await (const e of listFiles({ ...creds, repo, recursive: true })) {
      if (e.type === "file") report.listed[e.path] = e.size;
    }
  });
  for (const [p, buf] of local) {
    if (!(p in report.listed)) fail(`listFiles: ${p} missing; listed ${JSON.stringify(report.listed)}`);
    if (report.listed[p] !== buf.length) fail(`listFiles: ${p} has size ${report.listed[p]}, local ${buf.length}`);
  }

  for (const [p, buf] of local) {
    const blob = await step(`downloadFile ${p}`, () => downloadFile({ ...creds, repo, path: p }));
    if (!blob) fail(`downloadFile ${p}: null (404)`);
    const got = Buffer.from(await blob.arrayBuffer());
    if (!got.equals(buf)) fail(`downloadFile ${p}: ${got.length} bytes sha256 ${sha256(got)}, want ${buf.length} bytes sha256 ${sha256(buf)}`);
  }

  try {
    await createRepo({ ...creds, repo });
    fail("second createRepo succeeded; want HubApiError with statusCode 409");
  } catch (err) {
    if (!(err instanceof HubApiError)) fail(`second createRepo: want HubApiError 409, got ${describe(err)}`);
    if (err.statusCode !== 409) fail(`second createRepo: want statusCode 409, got ${describe(err)}`);
    report.secondCreate = { class: err.constructor?.name, statusCode: err.statusCode, message: err.message };
    log(`second createRepo failed as expected: ${err.statusCode} ${err.message}`);
  }

  if (values.fetch.length > 0) {
    const from = { type: "model", name: values["fetch-repo"] };
    for (const p of values.fetch) {
      const blob = await step(`downloadFile ${values["fetch-repo"]}/${p}`, () => downloadFile({ ...creds, repo: from, path: p }));
      if (!blob) fail(`downloadFile ${values["fetch-repo"]}/${p}: null (404)`);
      const got = Buffer.from(await blob.arrayBuffer());
      report.fetched[p] = { size: got.length, sha256: sha256(got) };
    }
  }

  process.stdout.write(JSON.stringify(report) + "\n");
}

main().catch((err) => fail(describe(err)));
