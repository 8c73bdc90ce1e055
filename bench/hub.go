package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"modelpub/core/hub"
	"modelpub/core/hub/hubemu"
)

const benchHubToken = "hf_benchEmulatorToken0123456789abcdef"

// hub: the Hub client against the in-process emulator (loopback only) on a
// 2 GB folder: hashing with an empty cache against cores × one core's
// sha256, a full upload (time, peak memory), a re-upload of the unchanged
// folder, and, when the npm client is installed, @huggingface/hub's
// uploadFiles on the same folder.
func (b *bench) hub() {
	folder := filepath.Join(b.dir, "hub-2GB")
	var total int64
	for i := range 4 {
		p := filepath.Join(folder, fmt.Sprintf("model-%05d-of-00004.safetensors", i+1))
		ensureModel(p, 500_000_000, 100, int64(100+i))
	}
	small := map[string]string{
		"config.json":    `{"architectures": ["BenchModel"], "hidden_size": 4096}` + "\n",
		"README.md":      "---\nlibrary_name: transformers\n---\n# bench\n",
		"tokenizer.json": `{"version": "1.0", "model": {"type": "BPE"}}` + "\n",
	}
	for name, s := range small {
		p := filepath.Join(folder, name)
		if old, err := os.ReadFile(p); err != nil || string(old) != s {
			check(os.WriteFile(p, []byte(s), 0o644))
		}
	}
	entries, err := os.ReadDir(folder)
	check(err)
	for _, e := range entries {
		fi, err := e.Info()
		check(err)
		total += fi.Size()
	}
	check(exec.Command("sh", "-c", `cat "$0"/* > /dev/null`, folder).Run()) // page cache
	size := fmtBytes(total)

	ctx := context.Background()
	srv, c, done := b.startEmulator("hub-emu")
	defer done()

	// (a) Hashing alone: hub.HashFile over the folder's weights with an
	// empty cache, cores files at a time, as an upload hashes them.
	one := testing.Benchmark(func(tb *testing.B) {
		buf := make([]byte, 64<<20)
		fillWeights(buf, 7)
		tb.SetBytes(int64(len(buf)))
		for tb.Loop() {
			sha256.Sum256(buf)
		}
	})
	oneGBs := float64(one.Bytes) * float64(one.N) / one.T.Seconds() / 1e9
	cores := runtime.GOMAXPROCS(0)
	var files []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".safetensors") {
			files = append(files, filepath.Join(folder, e.Name()))
		}
	}
	var hashTimes []time.Duration
	var hashed int64
	for i := range max(3, min(b.runs, 5)) {
		cache, err := hub.OpenHashCache(filepath.Join(b.dir, "hub-tmp", fmt.Sprintf("probe-%d.json", i)))
		check(err)
		// The files hashed as an upload hashes them: cores at a time.
		start := time.Now()
		var n atomic.Int64
		sem := make(chan struct{}, cores)
		errs := make(chan error, len(files))
		for _, f := range files {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				_, err := hub.HashFile(ctx, cache, f, true, func(k int64) { n.Add(k) })
				errs <- err
			}()
		}
		for range files {
			check(<-errs)
		}
		hashTimes = append(hashTimes, time.Since(start))
		hashed = n.Load()
	}
	check(os.RemoveAll(filepath.Join(b.dir, "hub-tmp")))
	hd := median(hashTimes)
	hGBs := float64(hashed) / hd.Seconds() / 1e9
	ref := float64(cores) * oneGBs
	b.add(fmt.Sprintf("hub: hash %s folder, empty cache (hub.HashFile, cores at a time)", size), fmt.Sprintf("%.2f GB/s", hGBs),
		fmt.Sprintf("%d × %.2f GB/s sha256", cores, oneGBs), fmt.Sprintf("%.2f×", hGBs/ref), "≥ 0.80×", hGBs >= 0.8*ref)

	// (b) A full upload to a fresh repo, empty hash cache. The emulator runs
	// in this process, so the peak is the client's and the server's together.
	full := mustRepo("bench/upload-full")
	_, err = c.CreateRepo(ctx, full, hub.CreateRepoOptions{})
	check(err)
	cachePath := filepath.Join(b.dir, "hub-cache.json")
	if err := os.Remove(cachePath); err != nil && !errors.Is(err, os.ErrNotExist) {
		check(err)
	}
	cache, err := hub.OpenHashCache(cachePath)
	check(err)
	check(exec.Command("sync").Run())
	resetPeak := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) == nil
	sysPeak := memSysSampler()
	srv.ResetRequests()
	st := time.Now()
	_, err = c.UploadFolder(ctx, full, folder, hub.UploadOptions{HashCache: cache})
	check(err)
	upload := time.Since(st)
	sys := sysPeak()
	var sent int64
	for _, r := range srv.Requests() {
		if r.Class == hubemu.ClassLFSUpload {
			sent += r.BodySize
		}
	}
	b.add(fmt.Sprintf("hub: UploadFolder %s to a fresh repo (emulator)", size), fmtDur(upload),
		fmt.Sprintf("%s LFS sent", fmtBytes(sent)), fmt.Sprintf("%.2f GB/s", float64(total)/upload.Seconds()/1e9),
		"(info)", sent >= total-10_000)
	hwm := procStatusKB("VmHWM")
	hwmName := "hub:   peak RSS during the upload (VmHWM, reset before; client + emulator)"
	if !resetPeak {
		hwmName = "hub:   peak RSS of the whole bench process (VmHWM, not resettable)"
	}
	// The target is for the client; the emulator shares the process, so a
	// pass here is conservative.
	b.add(hwmName, fmtKB(hwm), fmt.Sprintf("Go MemStats.Sys peak %s", fmtBytes(int64(sys))), "", "≤ 150 MB", resetPeak && hwm <= 150_000)

	// (c) Re-upload of the unchanged folder, with the cache the upload filled.
	srv.ResetRequests()
	st = time.Now()
	info, err := c.UploadFolder(ctx, full, folder, hub.UploadOptions{HashCache: cache})
	check(err)
	again := time.Since(st)
	sent = 0
	var commits int
	for _, r := range srv.Requests() {
		switch r.Class {
		case hubemu.ClassLFSUpload:
			sent += r.BodySize
		case hubemu.ClassCommit:
			commits++
		}
	}
	b.add("hub: re-upload of the unchanged folder", fmt.Sprintf("%.1f ms", float64(again.Microseconds())/1000),
		fmt.Sprintf("1 s target; %d LFS bytes sent, %d commits", sent, commits),
		fmt.Sprintf("%.3f×", again.Seconds()), "≤ 1 s, 0 B", again <= time.Second && sent == 0 && commits == 0 && info.NoChanges)

	// (d) @huggingface/hub's uploadFiles, on a fresh emulator (the first one
	// holds every object already).
	b.hubNode(folder, upload)
}

// hubNode uploads folder with @huggingface/hub's uploadFiles to a fresh
// emulator and compares with the Go client's time.
func (b *bench) hubNode(folder string, goTime time.Duration) {
	const name = "hub: UploadFolder vs @huggingface/hub uploadFiles"
	if _, err := exec.LookPath("npm"); err != nil {
		b.add(name, "not measured: npm is not installed", "", "", "≤ 0.60×", false)
		return
	}
	// Install the pinned client from the conformance test's lockfile into
	// the bench folder (once).
	npmDir := filepath.Join(b.dir, "npm-hub")
	modules := filepath.Join(npmDir, "node_modules")
	if _, err := os.Stat(filepath.Join(modules, "@huggingface", "hub")); err != nil {
		check(os.MkdirAll(npmDir, 0o755))
		for _, f := range []string{"package.json", "package-lock.json"} {
			data, err := os.ReadFile(filepath.Join("core", "hub", "conformance", f))
			check(err)
			check(os.WriteFile(filepath.Join(npmDir, f), data, 0o644))
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund")
		cmd.Dir, cmd.Stdout, cmd.Stderr = npmDir, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			b.add(name, "not measured: npm ci failed: "+err.Error(), "", "", "≤ 0.60×", false)
			return
		}
	}
	_, c, done := b.startEmulator("hub-emu-node")
	defer done()
	id := mustRepo("bench/upload-node")
	_, err := c.CreateRepo(context.Background(), id, hub.CreateRepoOptions{})
	check(err)
	script := `
import { uploadFiles } from "@huggingface/hub";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
const [hubUrl, accessToken, repo, dir] = process.argv.slice(1);
const files = readdirSync(dir).map((f) => ({ path: f, content: pathToFileURL(join(dir, f)) }));
const t = performance.now();
await uploadFiles({ repo: { type: "model", name: repo }, accessToken, hubUrl, files });
console.log("ms", performance.now() - t);
`
	cmd := exec.Command("node", "--input-type=module", "-e", script, c.Endpoint(), benchHubToken, id.String(), folder)
	cmd.Dir = npmDir
	cmd.Stderr = os.Stderr
	st := time.Now()
	out, err := cmd.Output()
	nodeTime := time.Since(st) // includes node's start-up, a few tens of ms
	if err != nil {
		b.add(name, "failed: "+strings.TrimSpace(err.Error()), "", "", "≤ 0.60×", false)
		return
	}
	_ = out
	r := goTime.Seconds() / nodeTime.Seconds()
	b.add(name, fmtDur(goTime), "uploadFiles "+fmtDur(nodeTime), fmt.Sprintf("%.2f×", r), "≤ 0.60×", r <= 0.6)
}

// startEmulator starts a Hub emulator on loopback with a fresh data dir
// under the bench dir (same disk as the inputs) and a client for it. It
// speaks Git LFS only (NoXet), as the hub group measures that path; the
// xet group has its own.
func (b *bench) startEmulator(sub string) (*hubemu.Server, *hub.Client, func()) {
	return startEmulatorIn(filepath.Join(b.dir, sub), true)
}

// startEmulatorIn starts an emulator keeping its repositories in dir;
// noXet makes it answer only the LFS transfers, as a Hub without Xet.
func startEmulatorIn(dir string, noXet bool) (*hubemu.Server, *hub.Client, func()) {
	check(os.RemoveAll(dir))
	srv, err := hubemu.New(hubemu.Options{Dir: dir, Tokens: map[string]string{benchHubToken: "bench"}, Record: true, NoXet: noXet})
	check(err)
	_, err = srv.Start("127.0.0.1:0")
	check(err)
	c, err := hub.NewClient(hub.Options{Endpoint: srv.URL(), Token: benchHubToken, Version: "bench"})
	check(err)
	return srv, c, func() {
		srv.Close()
		os.RemoveAll(dir)
	}
}

func mustRepo(s string) hub.RepoID {
	id, err := hub.ParseRepoID(s)
	check(err)
	return id
}

// memSysSampler samples runtime.MemStats.Sys every 10 ms until the returned
// function is called, which returns the highest value seen.
func memSysSampler() func() uint64 {
	var peak atomic.Uint64
	stop := make(chan struct{})
	finished := make(chan struct{})
	sample := func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.Sys > peak.Load() {
			peak.Store(m.Sys)
		}
	}
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			sample()
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 {
		close(stop)
		<-finished
		sample()
		return peak.Load()
	}
}

// procStatusKB reads a "Name: N kB" field of /proc/self/status, or 0.
func procStatusKB(field string) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	}
	return fmt.Sprintf("%d B", n)
}
