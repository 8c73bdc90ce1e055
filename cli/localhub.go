package cli

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"

	"modelpub/core/hub/hubemu"
	"modelpub/core/tensors"
)

func init() {
	register(command{
		name:    "localhub",
		args:    "[--addr 127.0.0.1:PORT] [--dir DATA] [--token hf_…=USER]… [--chunk-size BYTES] [--faults SPEC] [--quiet]",
		summary: "serve a local Hugging Face Hub, to rehearse a publish offline",
		help:    localhubHelp,
		run:     runLocalhub,
	})
}

// defaultLocalhubAddr is where localhub listens unless told otherwise:
// loopback only, a fixed port so HF_ENDPOINT can stay set between runs.
const defaultLocalhubAddr = "127.0.0.1:8765"

const localhubHelp = `Serves the Hugging Face Hub's publish protocol on this machine, with the
repos kept on disk: whoami, create and delete repo, preupload, LFS batch
with basic and multipart uploads, NDJSON commits and pull requests, tree
listing, branches and downloads (resolve). Publish to it, then browse what
would have been pushed, or point a test at it.

The first line printed is the URL; the second is how to point clients at it:

  HF_ENDPOINT=http://127.0.0.1:8765     huggingface_hub, modelpub
  hubUrl: "http://127.0.0.1:8765"       @huggingface/hub (JS)

It serves until Ctrl-C.

  --addr HOST:PORT    where to listen (default 127.0.0.1:8765; use
                      127.0.0.1:0 for any free port). Only this address
                      is ever listened on; keep it a loopback address
                      unless you mean to share it.
  --dir DATA          keep the repos in DATA (created), so they survive a
                      restart (default: a temporary folder, removed on exit)
  --token hf_…=USER   accept this token as user USER, who may write to the
                      namespace USER; repeat for several users. Tokens must
                      start with hf_. Without --token any hf_ token is
                      accepted, as user "user", and may write anywhere.
  --chunk-size BYTES  multipart part size offered to clients, e.g. 8MiB
                      (default 64MiB); larger objects go multipart
  --faults SPEC       inject failures, e.g.
                      seed=3,rate=0.1,kinds=500+503+429+drop+slow+lost,endpoints=lfs-upload+commit
                      kinds: 500, 503, 429 (Retry-After: 1), drop (connection
                      closed), slow, lost (served, then the answer is lost);
                      endpoints: whoami, create, delete, info, preupload,
                      lfs-batch, lfs-upload, lfs-complete, lfs-verify, commit,
                      tree, resolve, branch, other (default: all)
  --quiet             do not log requests to stderr
`

// tokenFlags collects repeated --token flags. They are checked after
// parsing: the flag package would quote a refused value, token included.
type tokenFlags []string

func (t *tokenFlags) String() string { return fmt.Sprint(len(*t), " tokens") }

func (t *tokenFlags) Set(v string) error {
	*t = append(*t, v)
	return nil
}

// parseTokens turns hf_…=USER values into a token → user map.
func parseTokens(vals []string) (map[string]string, error) {
	tokens := map[string]string{}
	for _, v := range vals {
		tok, user, ok := strings.Cut(v, "=")
		switch {
		case !ok || tok == "" || user == "":
			return nil, fmt.Errorf("%q: use hf_TOKEN=USER", redactToken(v))
		case !strings.HasPrefix(tok, "hf_") || len(tok) < 4:
			return nil, fmt.Errorf("%q: tokens must start with hf_ (clients refuse others)", redactToken(v))
		case strings.ContainsAny(user, "/ ") || strings.ContainsAny(tok, " \t"):
			return nil, fmt.Errorf("user %q: no spaces or slashes", user)
		}
		tokens[tok] = user
	}
	return tokens, nil
}

// redactToken keeps a token out of error messages.
func redactToken(v string) string {
	tok, user, ok := strings.Cut(v, "=")
	if len(tok) > 3 {
		tok = tok[:3] + "…"
	}
	if ok {
		return tok + "=" + user
	}
	return tok
}

// lockedWriter serialises the log lines of concurrent requests. A line
// holds what clients sent (a request path may decode to a newline), so it
// is written through safeText: one request, one line.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) printf(format string, a ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, safeText(fmt.Sprintf(format, a...))+"\n")
}

func runLocalhub(args []string, stdout, stderr io.Writer) int {
	ctx, stop := interruptible()
	defer stop()
	return serveLocalhub(ctx, args, stdout, stderr)
}

// serveLocalhub runs localhub until ctx is done.
func serveLocalhub(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("localhub", stderr)
	addr := fs.String("addr", defaultLocalhubAddr, "")
	dir := fs.String("dir", "", "")
	var tokenVals tokenFlags
	fs.Var(&tokenVals, "token", "")
	chunk := fs.String("chunk-size", "", "")
	faultSpec := fs.String("faults", "", "")
	quiet := fs.Bool("quiet", false, "")
	if _, ok := parseArgs(fs, args, 0); !ok {
		return ExitUsage
	}
	tokens, err := parseTokens(tokenVals)
	if err != nil {
		fmt.Fprintf(stderr, "modelpub localhub: --token %s\n", errText(err))
		return ExitUsage
	}
	log := &lockedWriter{w: stderr}
	opts := hubemu.Options{Dir: *dir}
	if len(tokens) > 0 {
		opts.Tokens = tokens
	}
	if *chunk != "" {
		n, err := tensors.ParseSize(*chunk)
		if err != nil {
			fmt.Fprintf(stderr, "modelpub localhub: --chunk-size: %s\n", errText(err))
			return ExitUsage
		}
		opts.ChunkSize = n
	}
	f, err := hubemu.ParseFaults(*faultSpec)
	if err != nil {
		fmt.Fprintf(stderr, "modelpub localhub: --faults: %s\n", errText(err))
		return ExitUsage
	}
	opts.Faults = f
	host, _, err := net.SplitHostPort(*addr)
	if err != nil {
		fmt.Fprintf(stderr, "modelpub localhub: --addr %q: %v (use HOST:PORT, e.g. 127.0.0.1:8765)\n", *addr, err)
		return ExitUsage
	}
	if !*quiet {
		opts.Logf = func(format string, a ...any) { log.printf("localhub: "+format, a...) }
	}

	s, err := hubemu.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "modelpub localhub: %s\n", errText(err))
		return ExitUsage
	}
	url, err := s.Start(*addr)
	if err != nil {
		s.Close()
		fmt.Fprintf(stderr, "modelpub localhub: %s\n", errText(err))
		return ExitUsage
	}
	fmt.Fprintf(stdout, "%s\nHF_ENDPOINT=%s\n", url, url)

	if ip := net.ParseIP(host); (ip == nil || !ip.IsLoopback()) && host != "localhost" {
		log.printf("localhub: warning: listening on %s, which other machines may reach", *addr)
	}
	if *dir == "" {
		log.printf("localhub: data in %s (temporary, removed on exit; keep it with --dir)", s.Dir())
	} else {
		log.printf("localhub: data in %s", s.Dir())
	}
	if len(tokens) == 0 {
		log.printf("localhub: open mode: any hf_ token is user \"user\" and may write to every namespace")
	} else {
		users := make([]string, 0, len(tokens))
		for _, u := range tokens {
			users = append(users, u)
		}
		sort.Strings(users)
		log.printf("localhub: users: %s", strings.Join(users, ", "))
	}
	if f.Rate > 0 {
		log.printf("localhub: faults: %s", f)
	}
	log.printf("localhub: serving until Ctrl-C")

	<-ctx.Done()
	if err := s.Close(); err != nil {
		log.printf("localhub: %v", err)
		return ExitUsage
	}
	log.printf("localhub: stopped")
	return ExitOK
}
