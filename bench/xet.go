package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
	"modelpub/core/hub/xet"
	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
)

// xetScale makes the synthetic SD-1.5 about 2 GB (UNet 1.6 GB, F32).
const xetScale = 0.47

// xetBench: Xet on its own. Chunking and hashing on one core against the
// reference chunker, @huggingface/xetchunk-wasm, in node on the same bytes;
// the upload of a 2 GB Diffusers folder through Xet to the emulator by the
// Go client against @huggingface/hub's uploadFiles (Xet, its default) to a
// fresh emulator; and the peak memory of `modelpub publish --transfer xet`
// of that folder, in a process of its own.
func (b *bench) xetBench() {
	npmDir, npmErr := b.xetNPM()
	b.xetChunking(npmDir, npmErr)
	folder := b.xetFolder()
	goTime := b.xetUploadGo(folder)
	b.xetUploadNode(folder, goTime, npmDir, npmErr)
	b.xetPublishRSS(folder)
}

// xetNPM installs (once) the locked reference packages of core/hub/xet's
// conformance test (@huggingface/xetchunk-wasm and @huggingface/hub) in the
// bench folder.
func (b *bench) xetNPM() (string, error) {
	dir := filepath.Join(b.dir, "npm-xet")
	if _, err := exec.LookPath("npm"); err != nil {
		return "", fmt.Errorf("npm is not installed (make deps-node)")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@huggingface", "xetchunk-wasm")); err == nil {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "@huggingface", "hub")); err == nil {
			return dir, nil
		}
	}
	check(os.MkdirAll(dir, 0o755))
	for _, f := range []string{"package.json", "package-lock.json"} {
		data, err := os.ReadFile(filepath.Join("core", "hub", "xet", "testdata", "xetchunk", f))
		check(err)
		check(os.WriteFile(filepath.Join(dir, f), data, 0o644))
	}
	cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--loglevel=warn")
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("npm ci: %w", err)
	}
	return dir, nil
}

// xetChunking: xet.Chunks (cut + keyed BLAKE3 of every chunk) on one core,
// against the 1 GB/s target and against xetchunk-wasm's getChunks in node
// on the same 64 MiB of F32 weights. Both are timed in CPU seconds (this
// thread's for Go, node's process for the WebAssembly), for at least 3 s
// after a warm-up call: GB/s per core, whatever else the machine runs.
func (b *bench) xetChunking(npmDir string, npmErr error) {
	const n = 64 << 20
	data := make([]byte, n)
	fillWeights(data, 14)
	ours, oursWall, chunks := chunkRate(data)
	b.add(fmt.Sprintf("xet: chunk + hash 64 MiB of F32, 1 core (%d chunks)", chunks), fmt.Sprintf("%.2f GB/s", ours),
		fmt.Sprintf("1 GB/s target (wall: %.2f GB/s)", oursWall), fmt.Sprintf("%.2f×", ours), "≥ 1.00×", ours >= 1)

	const name = "xet:   vs @huggingface/xetchunk-wasm getChunks in node"
	if npmErr != nil {
		b.add(name, "not measured: "+npmErr.Error(), "", "", "> 1.00×", false)
		return
	}
	in := filepath.Join(b.dir, "xet-chunk-input.bin")
	check(os.WriteFile(in, data, 0o644))
	defer os.Remove(in)
	script := `
import { readFileSync } from "node:fs";
import { getChunks } from "@huggingface/xetchunk-wasm";
const data = new Uint8Array(readFileSync(process.argv[1]));
let chunks = getChunks(data).length; // compiles and warms the WebAssembly
const c0 = process.cpuUsage(), t0 = performance.now();
let iters = 0;
while (iters < 3 || performance.now() - t0 < 3000) {
	chunks = getChunks(data).length;
	iters++;
}
const c = process.cpuUsage(c0);
console.log(JSON.stringify({ cpuMs: (c.user + c.system) / 1000, wallMs: performance.now() - t0, iters, chunks }));
`
	cmd := exec.Command("node", "--input-type=module", "-e", script, in)
	cmd.Dir, cmd.Stderr = npmDir, os.Stderr
	out, err := cmd.Output()
	if err != nil {
		b.add(name, "failed: "+err.Error(), "", "", "> 1.00×", false)
		return
	}
	var res struct {
		CPUMS  float64 `json:"cpuMs"`
		WallMS float64 `json:"wallMs"`
		Iters  int     `json:"iters"`
		Chunks int     `json:"chunks"`
	}
	check(json.Unmarshal(out, &res))
	wasm := float64(n) * float64(res.Iters) / (res.CPUMS / 1000) / 1e9
	same := res.Chunks == chunks
	b.add(name, fmt.Sprintf("%.2f GB/s", ours), fmt.Sprintf("%.2f GB/s (%d chunks)", wasm, res.Chunks),
		fmt.Sprintf("%.2f×", ours/wasm), "> 1.00×", ours > wasm && same)
}

// chunkRate runs xet.Chunks over data on one locked thread for at least
// 3 s after a warm-up call and returns GB per CPU second of the thread, GB
// per wall second, and the chunk count.
func chunkRate(data []byte) (perCPU, perWall float64, chunks int) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	chunks = len(xet.Chunks(data))
	cpu0 := threadCPU()
	st := time.Now()
	iters := 0
	for iters < 3 || time.Since(st) < 3*time.Second {
		chunks = len(xet.Chunks(data))
		iters++
	}
	wall, cpu := time.Since(st), threadCPU()-cpu0
	bytes := float64(len(data)) * float64(iters)
	return bytes / cpu.Seconds() / 1e9, bytes / wall.Seconds() / 1e9, chunks
}

// threadCPU is the CPU time (user + system) of the calling OS thread.
func threadCPU() time.Duration {
	const rusageThread = 1 // RUSAGE_THREAD, Linux
	var ru syscall.Rusage
	check(syscall.Getrusage(rusageThread, &ru))
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// xetFolder is the 2 GB synthetic SD-1.5, generated once and read into the
// page cache.
func (b *bench) xetFolder() string {
	src := filepath.Join(b.dir, "sd15-2GB")
	if _, err := pipeline.Open(context.Background(), src); err != nil {
		check(os.RemoveAll(src))
		fmt.Fprintf(os.Stderr, "generating %s (synthetic SD-1.5, scale %.2f)…\n", src, xetScale)
		_, err := pipelinetest.WriteSD15(context.Background(), src, pipelinetest.Options{Scale: xetScale, Seed: 14})
		check(err)
	}
	check(exec.Command("sh", "-c", `find "$0" -type f -exec cat {} + > /dev/null`, src).Run())
	return src
}

// folderSize is the bytes of the files under dir.
func folderSize(dir string) int64 {
	var n int64
	check(filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	}))
	return n
}

// xetReceived sums what the emulator's CAS accepted: xorb and shard
// bodies; and LFS bodies, which a Xet upload should not send.
func xetReceived(srv *hubemu.Server) (xorbs, shards, lfs int64) {
	for _, r := range srv.Requests() {
		switch {
		case r.Status >= 300:
		case r.Class == hubemu.ClassXet && r.Method == "POST" && strings.HasPrefix(r.Path, "/v1/xorbs/"):
			xorbs += r.BodySize
		case r.Class == hubemu.ClassXet && r.Method == "POST" && r.Path == "/v1/shards":
			shards += r.BodySize
		case r.Class == hubemu.ClassLFSUpload:
			lfs += r.BodySize
		}
	}
	return
}

// xetUploadGo uploads folder through Xet with the Go client (UploadFolder,
// --transfer xet, an empty shard cache and hash cache) to a fresh emulator
// on loopback; the median of the runs.
func (b *bench) xetUploadGo(folder string) time.Duration {
	ctx := context.Background()
	size := folderSize(folder)
	var times []time.Duration
	var xorbs, shards, lfs int64
	for i := range max(1, min(b.runs, 3)) {
		srv, _, done := startEmulatorIn(filepath.Join(b.dir, "xet-emu"), false)
		c, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: benchHubToken, Version: "bench", Transfer: hub.TransferXet})
		check(err)
		id := mustRepo(fmt.Sprintf("bench/xet-go-%d", i))
		_, err = c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
		check(err)
		work := filepath.Join(b.dir, "xet-go-caches")
		check(os.RemoveAll(work))
		hc, err := hub.OpenHashCache(filepath.Join(work, "hashes.json"))
		check(err)
		sc, err := xet.OpenShardCache(filepath.Join(work, "shards"), hub.DefaultXetCacheBytes, nil)
		check(err)
		check(exec.Command("sync").Run())
		st := time.Now()
		_, err = c.UploadFolder(ctx, id, folder, hub.UploadOptions{HashCache: hc, XetCache: sc})
		check(err)
		times = append(times, time.Since(st))
		xorbs, shards, lfs = xetReceived(srv)
		done()
		check(os.RemoveAll(work))
	}
	d := median(times)
	b.add(fmt.Sprintf("xet: UploadFolder %s Diffusers folder through Xet (emulator)", fmtBytes(size)), fmtDur(d),
		fmt.Sprintf("%s xorbs, %s shards, %d B LFS", fmtBytes(xorbs), fmtBytes(shards), lfs),
		fmt.Sprintf("%.2f GB/s", float64(size)/d.Seconds()/1e9), "(info)", xorbs > 0 && lfs == 0)
	return d
}

// xetUploadNode uploads folder with @huggingface/hub's uploadFiles (Xet is
// its default when the Hub answers it) to a fresh emulator and compares
// the Go client's time with it.
func (b *bench) xetUploadNode(folder string, goTime time.Duration, npmDir string, npmErr error) {
	const name = "xet: UploadFolder vs @huggingface/hub uploadFiles, both Xet"
	if npmErr != nil {
		b.add(name, "not measured: "+npmErr.Error(), "", "", "≤ 0.60×", false)
		return
	}
	script := `
import { uploadFiles } from "@huggingface/hub";
import { readdirSync } from "node:fs";
import { join, relative, sep } from "node:path";
import { pathToFileURL } from "node:url";
const [hubUrl, accessToken, repo, dir] = process.argv.slice(1);
const walk = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) =>
	e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]);
const files = walk(dir).map((p) => ({ path: relative(dir, p).split(sep).join("/"), content: pathToFileURL(p) }));
const t = performance.now();
await uploadFiles({ repo: { type: "model", name: repo }, accessToken, hubUrl, files });
console.log(JSON.stringify({ ms: performance.now() - t }));
`
	var times []time.Duration
	var xorbs, lfs int64
	for i := range max(1, min(b.runs, 3)) {
		srv, c, done := startEmulatorIn(filepath.Join(b.dir, "xet-emu-node"), false)
		id := mustRepo(fmt.Sprintf("bench/xet-node-%d", i))
		_, err := c.CreateRepo(context.Background(), id, hub.CreateRepoOptions{})
		check(err)
		check(exec.Command("sync").Run())
		cmd := exec.Command("node", "--input-type=module", "-e", script, srv.URL(), benchHubToken, id.String(), folder)
		cmd.Dir, cmd.Stderr = npmDir, os.Stderr
		st := time.Now()
		_, err = cmd.Output()
		wall := time.Since(st) // with node's start-up, a few tens of ms
		xorbs, _, lfs = xetReceived(srv)
		done()
		if err != nil {
			b.add(name, "failed: "+err.Error(), "", "", "≤ 0.60×", false)
			return
		}
		times = append(times, wall)
	}
	nodeTime := median(times)
	r := goTime.Seconds() / nodeTime.Seconds()
	b.add(name, fmtDur(goTime), fmt.Sprintf("uploadFiles %s (%s xorbs, %d B LFS)", fmtDur(nodeTime), fmtBytes(xorbs), lfs),
		fmt.Sprintf("%.2f×", r), "≤ 0.60×", r <= 0.6 && xorbs > 0)
}

// xetPublishRSS runs `modelpub publish --transfer xet` of the folder to a
// fresh emulator in a process of its own, under GNU time: its peak RSS is
// modelpub's alone. The user cache (staging, hashes, shard cache) is a
// fresh folder each run.
func (b *bench) xetPublishRSS(folder string) {
	var rss int64
	var times []time.Duration
	for i := range max(1, min(b.runs, 3)) {
		srv, _, done := startEmulatorIn(filepath.Join(b.dir, "xet-emu-rss"), false)
		cache := filepath.Join(b.dir, "xet-rss-cache")
		check(os.RemoveAll(cache))
		d, kb := b.timeCmdEnv([]string{"XDG_CACHE_HOME=" + cache, "HF_TOKEN=" + benchHubToken, "HF_HOME=" + cache},
			b.bin, "publish", folder, "--repo", fmt.Sprintf("bench/xet-rss-%d", i), "--endpoint", srv.URL(), "--transfer", "xet")
		xorbs, _, lfs := xetReceived(srv)
		done()
		check(os.RemoveAll(cache))
		if xorbs == 0 || lfs > 0 {
			b.add("xet: modelpub publish --transfer xet", "did not go through Xet", "", "", "≤ 200 MB", false)
			return
		}
		rss = max(rss, kb)
		times = append(times, d)
	}
	b.add(fmt.Sprintf("xet: peak RSS of modelpub publish --transfer xet (%s)", fmtDur(median(times))), fmtKB(rss),
		"", "", "≤ 200 MB", rss <= 200_000)
}

// timeCmdEnv runs a command once under GNU time with env added, and
// returns its wall time and peak RSS in kB; a failure ends the bench.
func (b *bench) timeCmdEnv(env []string, name string, args ...string) (time.Duration, int64) {
	var stderr strings.Builder
	cmd := exec.Command("/usr/bin/time", append([]string{"-v", name}, args...)...)
	cmd.Stderr = &stderr
	cmd.Env = append(append(os.Environ(), "LANG=en_US.UTF-8"), env...)
	st := time.Now()
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "%s %v: %v\n%s", name, args, err, stderr.String())
		os.Exit(1)
	}
	d := time.Since(st)
	var kb int64
	if m := maxRSS.FindStringSubmatch(stderr.String()); m != nil {
		fmt.Sscan(m[1], &kb)
	}
	return d, kb
}
