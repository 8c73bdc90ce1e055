// Command screenshots photographs the real Modelpub window: it writes a
// synthetic Stable Diffusion 1.5 pipeline, starts the app once per view with
// MODELPUB_OPEN, MODELPUB_TAB and MODELPUB_SELECT set (see gui/app.go), and
// saves the X screen as a PNG with ImageMagick's import (Fyne's own
// Canvas().Capture is black under Xvfb).
//
// It needs an X display with no window manager, which is what
// "make screenshots" gives it:
//
//	xvfb-run -a -s "-screen 0 1280x800x24" go run ./cmd/screenshots -app bin/modelpub
//
// The app runs with HOME and XDG_CONFIG_HOME in a temporary folder, so the
// user's recent folders never show and the pipeline's path reads
// ~/models/stable-diffusion-v1-5; the welcome view is taken last and lists
// it as its recent folder.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"modelpub/core/hub/hubemu"
	"modelpub/core/pipeline/pipelinetest"
)

// view is one screenshot.
type view struct {
	file  string // PNG name in the output folder
	tab   string // "" for the welcome view, before any folder is open
	node  string
	theme string // FYNE_THEME: "" (dark here), "light"
	// broken opens the copy of the pipeline whose UNet shard is truncated.
	broken bool
	// click, when set, is where the pointer clicks (in the window) before
	// the screenshot: a shard map block, to show its tip and select its
	// tensor. (Under Xvfb without a window manager the window gets clicks
	// but no hover.)
	click *[2]int
}

// views are every tab of gui.makePanels, the welcome view, a folder with a
// problem, and one tab in the light theme.
var views = []view{
	{file: "overview.png", tab: "Overview", node: "c/unet"},
	// A click on a block of the text encoder's planned file names it at
	// the pointer, selects it in the tree and outlines it in both files.
	{file: "shards.png", tab: "Shards", click: &[2]int{1000, 432}},
	{file: "variant.png", tab: "Variant"},
	{file: "model-card.png", tab: "Model card"},
	{file: "publish.png", tab: "Publish"},
	{file: "welcome.png"},
	{file: "problems.png", tab: "Publish", node: "c/unet", broken: true},
	{file: "shards-light.png", tab: "Shards", theme: "light"},
}

func main() {
	app := flag.String("app", "bin/modelpub", "the Modelpub binary")
	out := flag.String("out", "docs/screenshots", "folder of the PNGs")
	only := flag.String("only", "", "comma-separated PNG names to take (default all: "+names()+")")
	settle := flag.Duration("settle", 3*time.Second, "time the window gets to open the folder and draw")
	flag.Parse()
	if err := run(*app, *out, *only, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "screenshots:", err)
		os.Exit(1)
	}
}

func names() string {
	var s []string
	for _, v := range views {
		s = append(s, v.file)
	}
	return strings.Join(s, ",")
}

func run(app, out, only string, settle time.Duration) error {
	if os.Getenv("DISPLAY") == "" {
		return errors.New("no DISPLAY: run under xvfb-run (make screenshots does)")
	}
	for _, tool := range []string{"import", "xdotool"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing (packages imagemagick, xdotool): %w", tool, err)
		}
	}
	app, err := filepath.Abs(app)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "modelpub-screenshots-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	home := filepath.Join(tmp, "home")
	dir := filepath.Join(home, "models", "stable-diffusion-v1-5")
	// Sharded weights and an fp16 UNet give every panel something to show.
	opts := pipelinetest.Options{Scale: 0.001, Seed: 1, FP16Variant: []string{pipelinetest.UNet}, MaxShardSize: 1_000_000}
	if _, err := pipelinetest.WriteSD15(context.Background(), dir, opts); err != nil {
		return err
	}
	// The same with the UNet's second shard cut short, as an interrupted
	// download leaves it: the window opens on the Overview's Problems.
	broken := filepath.Join(home, "models", "sd15-interrupted")
	if err := os.CopyFS(broken, os.DirFS(dir)); err != nil {
		return err
	}
	shard := filepath.Join(broken, "unet", "diffusion_pytorch_model-00002-of-00004.safetensors")
	st, err := os.Stat(shard)
	if err != nil {
		return err
	}
	if err := os.Truncate(shard, st.Size()/2); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	// A local Hub, so the Publish panel shows an account (user "studio-bot",
	// with an organisation) rather than a login prompt.
	const token = "hf_screenshotToken0123456789abcdefgh"
	hubSrv, err := hubemu.New(hubemu.Options{Dir: filepath.Join(tmp, "hub"), Tokens: map[string]string{token: "studio-bot"},
		Orgs: map[string]map[string]string{"diffusers-lab": {"studio-bot": "write"}}})
	if err != nil {
		return err
	}
	if _, err := hubSrv.Start("127.0.0.1:0"); err != nil {
		return err
	}
	defer hubSrv.Close()
	for _, v := range views {
		if only != "" && !contains(strings.Split(only, ","), v.file) {
			continue
		}
		env := append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"), "LANG=en_US.UTF-8",
			"HF_ENDPOINT="+hubSrv.URL(), "HF_TOKEN="+token, "XDG_CACHE_HOME="+filepath.Join(tmp, "cache"))
		if v.theme != "" {
			env = append(env, "FYNE_THEME="+v.theme)
		}
		if v.tab != "" {
			open := dir
			if v.broken {
				open = broken
			}
			env = append(env, "MODELPUB_OPEN="+open, "MODELPUB_TAB="+v.tab, "MODELPUB_SELECT="+v.node)
		}
		path := filepath.Join(out, v.file)
		if err := shoot(app, env, path, settle, v.click); err != nil {
			return fmt.Errorf("%s: %w", v.file, err)
		}
		fmt.Println("wrote", path)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == s {
			return true
		}
	}
	return false
}

// shoot starts the app, waits for its window, lets it settle (and clicks at
// click, in the window, if set), saves the window's area of the screen to
// path and stops the app.
func shoot(app string, env []string, path string, settle time.Duration, click *[2]int) error {
	cmd := exec.Command(app)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	geom, err := waitForWindow(20 * time.Second)
	if err != nil {
		return err
	}
	time.Sleep(settle)
	if click != nil {
		var x, y int
		if _, err := fmt.Sscanf(geom[strings.Index(geom, "+")+1:], "%d+%d", &x, &y); err != nil {
			return fmt.Errorf("window geometry %q: %w", geom, err)
		}
		move := exec.Command("xdotool", "mousemove", strconv.Itoa(x+click[0]), strconv.Itoa(y+click[1]), "click", "1")
		if err := move.Run(); err != nil {
			return fmt.Errorf("xdotool click: %w", err)
		}
		time.Sleep(time.Second)
	}
	return exec.Command("import", "-window", "root", "-crop", geom, "+repage", path).Run()
}

// waitForWindow polls until the window titled Modelpub… is mapped and
// returns its geometry as WxH+X+Y.
func waitForWindow(timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		time.Sleep(300 * time.Millisecond)
		ids, err := exec.Command("xdotool", "search", "--onlyvisible", "--name", "^Modelpub").Output()
		fields := strings.Fields(string(ids))
		if err != nil || len(fields) == 0 {
			continue
		}
		shell, err := exec.Command("xdotool", "getwindowgeometry", "--shell", fields[0]).Output()
		if err != nil {
			continue
		}
		g := map[string]string{}
		for _, line := range strings.Fields(string(shell)) {
			if k, v, ok := strings.Cut(line, "="); ok {
				g[k] = v
			}
		}
		return fmt.Sprintf("%sx%s+%s+%s", g["WIDTH"], g["HEIGHT"], g["X"], g["Y"]), nil
	}
	return "", errors.New("the window did not appear")
}
