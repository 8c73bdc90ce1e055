// Usage: node download.mjs REFRESH_URL HUB_TOKEN REQUESTS_JSON — downloads
// files from Xet storage with @huggingface/hub's own downloader (XetBlob,
// exported as __internal_XetBlob): REFRESH_URL answers the read token,
// each request is {hash, size, sliceStart, sliceEnd}. Prints one JSON
// object: per hash the sha256 and length of the whole file and of the
// slice.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { __internal_XetBlob as XetBlob } from "@huggingface/hub";

// The package does not export its package.json: read it from disk.
const version = JSON.parse(
	readFileSync(fileURLToPath(new URL("./node_modules/@huggingface/hub/package.json", import.meta.url)), "utf8"),
).version;
const [refreshUrl, accessToken, requestsPath] = process.argv.slice(2);
const requests = JSON.parse(readFileSync(requestsPath, "utf8"));

const digest = async (blob) => {
	const b = new Uint8Array(await blob.arrayBuffer());
	return { size: b.length, sha256: createHash("sha256").update(b).digest("hex") };
};

const files = {};
for (const r of requests) {
	const blob = new XetBlob({ refreshUrl, accessToken, hash: r.hash, size: r.size, parallelDownloads: false });
	files[r.hash] = { whole: await digest(blob), slice: await digest(blob.slice(r.sliceStart, r.sliceEnd)) };
}
process.stdout.write(JSON.stringify({ library: "@huggingface/hub", version, files }));
