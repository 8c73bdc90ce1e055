package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"modelpub/core/hub"
	"modelpub/core/pipeline"
	"modelpub/core/pipeline/pipelinetest"
	"modelpub/core/publish"
)

// fullSD15 is the full-size synthetic SD-1.5 (about 4.27 GB of F32),
// generated once under the bench folder and read into the page cache.
func (b *bench) fullSD15() string {
	src := filepath.Join(b.dir, "sd15-full")
	if _, err := pipeline.Open(context.Background(), src); err != nil {
		check(os.RemoveAll(src))
		fmt.Fprintf(os.Stderr, "generating %s (synthetic SD-1.5, scale 1)…\n", src)
		_, err := pipelinetest.WriteSD15(context.Background(), src, pipelinetest.Options{Scale: 1, Seed: 1})
		check(err)
	}
	check(exec.Command("sh", "-c", `find "$0" -type f -exec cat {} + > /dev/null`, src).Run()) // page cache
	return src
}

// publishOnePass: publishing the full-size synthetic SD-1.5 with an fp16
// variant to the emulator (in this process, over loopback), against the
// two passes it is made of, measured in the same run: saving it (fp16
// variant, fsynced) and uploading the saved folder (hashing with an empty
// cache, then sending). A publish saves, checks every staged byte against
// the source and uploads each file as soon as it is checked: it should cost
// the longer of the two, not their sum.
func (b *bench) publishOnePass() {
	src := b.fullSD15()
	ctx := context.Background()
	p, err := pipeline.Open(ctx, src)
	check(err)
	// On tmpfs when it has room: what is measured is how the passes
	// overlap, not how fast one disk takes two streams of writes (on a disk
	// a publish writes the staging and the Hub's copy both, each as much as
	// one reference writes).
	work, where := filepath.Join(b.dir, "publish-work"), "disk"
	if free, ok := freeBytes("/dev/shm"); ok && free > 16<<30 {
		work, where = filepath.Join("/dev/shm", "modelpub-bench-publish"), "tmpfs"
	}
	var saves, uploads, publishes []time.Duration
	for i := range max(1, min(b.runs, 3)) {
		check(os.RemoveAll(work))
		check(os.MkdirAll(work, 0o755))

		// The save alone.
		saved := filepath.Join(work, "saved")
		st := time.Now()
		_, err := pipeline.Save(ctx, p, saved, pipeline.SaveOptions{Variant: "fp16"})
		check(err)
		saves = append(saves, time.Since(st))

		// The upload of the saved folder alone, to a fresh emulator.
		srv, c, done := startEmulatorIn(filepath.Join(work, "emu"), false)
		id := mustRepo(fmt.Sprintf("bench/saved-%d", i))
		_, err = c.CreateRepo(ctx, id, hub.CreateRepoOptions{})
		check(err)
		cache, err := hub.OpenHashCache(filepath.Join(work, "upload-hashes.json"))
		check(err)
		st = time.Now()
		_, err = c.UploadFolder(ctx, id, saved, hub.UploadOptions{HashCache: cache})
		check(err)
		uploads = append(uploads, time.Since(st))
		done()
		check(os.RemoveAll(saved))

		// The publish, from the source, to a fresh emulator and cache.
		srv, _, done = startEmulatorIn(filepath.Join(work, "emu"), false)
		st = time.Now()
		_, err = publish.Run(ctx, publish.Options{Source: src, Pipeline: p, Repo: fmt.Sprintf("bench/published-%d", i),
			Variant: "fp16", Token: benchHubToken, Endpoint: srv.URL(), CacheDir: filepath.Join(work, "cache"), Version: "bench"})
		check(err)
		publishes = append(publishes, time.Since(st))
		done()
	}
	check(os.RemoveAll(work))
	s, u, pub := median(saves), median(uploads), median(publishes)
	longer := max(s, u)
	b.add(where+": save --variant fp16 alone (reference)", fmtDur(s), "", "", "", true)
	b.add(where+": upload of the saved folder alone (reference)", fmtDur(u), "", "", "", true)
	b.add(where+": publish SD-1.5 + fp16 to the emulator, one pass", fmtDur(pub), "longer "+fmtDur(longer)+", sum "+fmtDur(s+u),
		ratio(pub, longer), "≤ 1.25×", pub.Seconds() <= 1.25*longer.Seconds())
}

// freeBytes is the free space of the file system holding dir.
func freeBytes(dir string) (int64, bool) {
	var st syscall.Statfs_t
	if syscall.Statfs(dir, &st) != nil {
		return 0, false
	}
	return int64(st.Bavail) * int64(st.Bsize), true
}
