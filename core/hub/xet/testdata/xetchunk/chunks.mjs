// Usage: node chunks.mjs FILE... — prints one JSON object: for each file its
// chunks (hash and length) as @huggingface/xetchunk-wasm cuts them, both in
// one call and streamed in uneven pieces, the xorb hash and file hash over
// all chunks, and the verification hash of all chunk hashes.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import {
	createChunker,
	finalize,
	getChunks,
	hashToHex,
	nextBlock,
	fileHash,
	xorbHash,
	verificationHash,
} from "@huggingface/xetchunk-wasm";

const require = createRequire(import.meta.url);
const version = require("@huggingface/xetchunk-wasm/package.json").version;

function streamed(data) {
	// Pieces of 1000, 70001, 3 and 262144 bytes in turn: boundaries must not
	// depend on how the input arrives.
	const sizes = [1000, 70001, 3, 262144];
	const chunker = createChunker();
	const out = [];
	let pos = 0;
	for (let i = 0; pos < data.length; i++) {
		const end = Math.min(data.length, pos + sizes[i % sizes.length]);
		out.push(...nextBlock(chunker, data.subarray(pos, end)));
		pos = end;
	}
	const last = finalize(chunker);
	if (last) out.push(last);
	return out;
}

const show = (chunks) => chunks.map((c) => [hashToHex(c.hash), c.length]);

const files = {};
for (const path of process.argv.slice(2)) {
	const data = new Uint8Array(readFileSync(path));
	const chunks = getChunks(data);
	files[path] = {
		chunks: show(chunks),
		streamed: show(streamed(data)),
		xorbHash: hashToHex(xorbHash(chunks)),
		fileHash: hashToHex(fileHash(chunks)),
		verificationHash: hashToHex(verificationHash(chunks.map((c) => c.hash))),
	};
}
process.stdout.write(JSON.stringify({ library: "@huggingface/xetchunk-wasm", version, files }));
