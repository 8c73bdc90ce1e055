// Fetches a whole repository with the official @huggingface/hub client, to
// check from the outside what a publish produced.
//
//   HUB_ENDPOINT=http://127.0.0.1:PORT HUB_TOKEN=hf_... node fetch.mjs \
//     --repo alice/model [--revision refs/pr/1]
//
// listFiles (recursive) at the revision, then downloadFile of every file.
// Prints one JSON object on stdout: {"listed": {path: size},
// "fetched": {path: {size, sha256}}}. Errors go to stderr as
// "fetch: FAIL: ..." with exit code 1.

import { createHash } from "node:crypto";
import { parseArgs } from "node:util";

import { downloadFile, HubApiError, listFiles } from "@huggingface/hub";

function fail(msg) {
  process.stderr.write(`fetch: FAIL: ${msg}\n`);
  process.exit(1);
}

function describe(err) {
  if (err instanceof HubApiError) return `HubApiError ${err.statusCode} ${err.url}: ${err.message}`;
  return err?.stack ?? String(err);
}

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");

async function main() {
  const { values } = parseArgs({
    options: { repo: { type: "string" }, revision: { type: "string" }, endpoint: { type: "string" } },
    strict: true,
  });
  const hubUrl = (values.endpoint ?? process.env.HUB_ENDPOINT ?? "").replace(/\/+$/, "");
  const accessToken = process.env.HUB_TOKEN;
  if (!hubUrl || !accessToken || !values.repo) fail("HUB_ENDPOINT, HUB_TOKEN and --repo are required");
  const base = { hubUrl, accessToken, repo: { type: "model", name: values.repo }, revision: values.revision };
  const report = { listed: {}, fetched: {} };
  try {
    for await (const e of listFiles({ ...base, recursive: true })) {
      if (e.type === "file") report.listed[e.path] = e.size;
    }
    for (const p of Object.keys(report.listed).sort()) {
      const blob = await downloadFile({ ...base, path: p });
      if (!blob) fail(`downloadFile ${p}: null (404)`);
      const buf = Buffer.from(await blob.arrayBuffer());
      report.fetched[p] = { size: buf.length, sha256: sha256(buf) };
    }
  } catch (err) {
    fail(describe(err));
  }
  process.stdout.write(JSON.stringify(report) + "\n");
}

await main();
